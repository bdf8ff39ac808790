// --pid/--container/--unit/--cgroup: what matches, and the one-line usage errors for values that never can.
import { describe, expect, it } from 'vitest';
import { cgroupOption, containerOption, ownerMatches, ownersMatch, unitOption } from '../../src/owner-match.js';

const ID = 'ab'.repeat(32);
const feed = { pid: 812, comm: 'feed', cgroup: `/system.slice/docker-${ID}.scope`, unit: `docker-${ID}.scope`, container: ID };
const named = { pid: 455, comm: 'named', cgroup: '/system.slice/named.service', unit: 'named.service' };
const bare = { pid: 9, comm: 'x' };

describe('ownerMatches', () => {
  it('container by prefix, any length up to 64', () => {
    expect(ownerMatches(feed, { container: 'abab' })).toBe(true);
    expect(ownerMatches(feed, { container: ID })).toBe(true);
    expect(ownerMatches(feed, { container: 'abac' })).toBe(false);
    expect(ownerMatches(named, { container: 'ab' })).toBe(false);
  });
  it('unit by full name, or by name without the suffix', () => {
    expect(ownerMatches(named, { unit: 'named.service' })).toBe(true);
    expect(ownerMatches(named, { unit: 'named' })).toBe(true);
    expect(ownerMatches(named, { unit: 'name' })).toBe(false);
    expect(ownerMatches(named, { unit: 'named.scope' })).toBe(false);
  });
  it('cgroup by prefix at a path boundary', () => {
    expect(ownerMatches(named, { cgroup: '/system.slice' })).toBe(true);
    expect(ownerMatches(named, { cgroup: '/system.slice/named.service' })).toBe(true);
    expect(ownerMatches(named, { cgroup: '/system.sl' })).toBe(false);
    expect(ownerMatches(named, { cgroup: '/' })).toBe(true);
    expect(ownerMatches(bare, { cgroup: '/' })).toBe(false);
  });
  it('every option given must hold for one owner', () => {
    expect(ownerMatches(feed, { pid: 812, container: 'ab' })).toBe(true);
    expect(ownerMatches(feed, { pid: 813, container: 'ab' })).toBe(false);
    expect(ownersMatch([named, feed], { unit: 'named', container: 'ab' })).toBe(false);
    expect(ownersMatch([named, feed], { container: 'ab' })).toBe(true);
    expect(ownersMatch([], {})).toBe(false);
  });
});

describe('option parsers', () => {
  it('accept and normalise', () => {
    expect(containerOption('ABAB')).toBe('abab');
    expect(unitOption('user@1000.service')).toBe('user@1000.service');
    expect(cgroupOption('/system.slice/')).toBe('/system.slice');
    expect(cgroupOption('/')).toBe('/');
  });
  it('reject with a message naming the option', () => {
    expect(() => containerOption('nginx')).toThrow(/--container takes a hex container id/);
    expect(() => containerOption('a'.repeat(65))).toThrow(/--container/);
    expect(() => unitOption('a b')).toThrow(/--unit takes a systemd unit name/);
    expect(() => cgroupOption('system.slice')).toThrow(/--cgroup takes an absolute cgroup path/);
    expect(() => cgroupOption('/a/../b')).toThrow(/--cgroup/);
  });
});
