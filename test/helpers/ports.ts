// Free UDP ports for live tests: the kernel picks one (bind to port 0), and a per-process set makes
// sure no two tests in this process get the same port.
import { createSocket } from 'node:dgram';

const handedOut = new Set<number>();

async function kernelPort(type: 'udp4' | 'udp6'): Promise<number> {
  const sock = createSocket(type);
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, type === 'udp4' ? '127.0.0.1' : '::1', () => resolve());
    });
    return sock.address().port;
  } finally {
    sock.close();
  }
}

/** A UDP port free right now on loopback and never returned before by this process. */
export async function freePort(type: 'udp4' | 'udp6' = 'udp4'): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const port = await kernelPort(type);
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('freePort: no unused port after 100 tries');
}
