// `rxtrace --version`: which argument lists ask for it, and what it prints (npm package runtime:
// the tests run from src/, so no build-info.json and no single-executable define).
import { describe, expect, it } from 'vitest';
import { versionRequest, versionText } from '../../../src/cli/version.js';
import { CONTRACTS } from '../../../src/version.js';

describe('versionRequest', () => {
  it('is text for --version or -V alone, the --format given otherwise, in any order', () => {
    expect(versionRequest(['--version'])).toBe('text');
    expect(versionRequest(['-V'])).toBe('text');
    expect(versionRequest(['--version', '--format', 'ndjson'])).toBe('ndjson');
    expect(versionRequest(['--format=ndjson', '--version'])).toBe('ndjson');
    expect(versionRequest(['--format', 'text', '-V'])).toBe('text');
  });
  it('leaves everything else to commander', () => {
    expect(versionRequest([])).toBeUndefined();
    expect(versionRequest(['trace', '--format', 'ndjson'])).toBeUndefined();
    expect(versionRequest(['trace', '--version'])).toBeUndefined();
    expect(versionRequest(['--version', '--port', '5'])).toBeUndefined();
  });
  it('a bad --format is a usage error naming the value', () => {
    expect(() => versionRequest(['--version', '--format', 'xml'])).toThrow(/--format is ndjson or text, got "xml"/);
    expect(() => versionRequest(['--version', '--format', 'xml'])).toThrow(expect.objectContaining({ code: 'EUSAGE' }));
  });
});

describe('versionText', () => {
  it('text: version, commit, runtime, in one line', () => {
    const t = versionText('text');
    expect(t).toMatch(/^rxtrace \d+\.\d+\.\d+\S* \(commit \S+, npm package, Node [\d.]+, linux-\w+\)\n$/);
  });
  it('ndjson: one object with the contract versions, each a semantic version', () => {
    const line = versionText('ndjson');
    expect(line.endsWith('\n') && line.indexOf('\n') === line.length - 1).toBe(true);
    const v = JSON.parse(line);
    expect(v).toMatchObject({ event: 'version', runtime: 'npm', contracts: CONTRACTS });
    for (const c of Object.values(v.contracts)) expect(c).toMatch(/^\d+\.\d+\.\d+$/);
    expect(Object.keys(v.contracts).sort()).toEqual(['metrics', 'ndjson']);
  });
});
