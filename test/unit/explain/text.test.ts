// explain's text form for the listener's finding: the place, the listener and its owner, the
// numbers and the fixes in order.
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../../src/explain/types.js';
import { findingsText } from '../../../src/render/explain-text.js';

describe('explain text', () => {
  it('listen_overflow: [accept queue], the listener, its owner, the summary and the fixes', () => {
    const f: Finding = {
      place: 'listener',
      cause: 'listen_overflow',
      drops: 396,
      socket: { table: 'tcp', inode: 5, local: '127.0.0.1:8080', remote: '0.0.0.0:0', netns: null, owners: [{ pid: 9, comm: 'srv' }] },
      evidence: {},
      fixes: [
        { kind: 'app', text: 'accept faster' },
        { kind: 'sysctl', name: 'net.core.somaxconn', current: 128, value: 4096, command: 'sysctl -w net.core.somaxconn=4096', text: 'raise the cap' },
      ],
      summary: 'the accept queue overflowed',
    };
    expect(findingsText([f], 3)).toEqual([
      '1 finding(s) in 3 s, most drops first:',
      '',
      '1. [accept queue] listen_overflow: 396 drops',
      '   socket: tcp 127.0.0.1:8080 inode 5, owned by srv[9]',
      '   the accept queue overflowed',
      '   fix 1: accept faster',
      '   fix 2: raise the cap',
    ]);
  });
});
