// The kernel layout helper against the live tracefs: every live test asks it what this kernel's
// tracepoints can show, so it must agree with the raw format files (read here with a plain grep).
import { execFileSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { kernelLayout } from '../helpers/kernel.js';
import { describeLive } from '../helpers/live.js';

const k = await kernelLayout();

/** The raw format file, read with a shell so the product's parser is not its own judge. */
const rawFormat = (path: string): string =>
  execFileSync('sh', ['-c', `m=$(mktemp -d); mount -t tracefs nodev $m && cat $m/events/${path}/format; umount $m; rmdir $m`], { encoding: 'utf8' });

describeLive('kernel layout (test/helpers/kernel.ts)', () => {
  it('reads this kernel: release, the udp port field, addresses, kfree_skb rx_sk and reason', () => {
    expect(k.read).toBe(true);
    expect(k.release).toBe(execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim());
    const udp = rawFormat('udp/udp_fail_queue_rcv_skb');
    expect(udp).toMatch(new RegExp(`field:.*\\b${k.udp.portField};`));
    expect(/field:.*\bdaddr\[/.test(udp)).toBe(k.udp.addresses);
    const kfree = rawFormat('skb/kfree_skb');
    expect(/field:.*\brx_sk;/.test(kfree)).toBe(k.kfreeSkb.rxSk);
    expect(/field:.*\breason;/.test(kfree)).toBe(k.kfreeSkb.reason);
    console.log(`[kernel] ${k.release}: udp ${k.udp.fields.join(',')}; kfree_skb ${k.kfreeSkb.fields.join(',')}; udp6 event ${k.udp6Event}`);
  });
});
