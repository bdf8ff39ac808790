// sock_diag: the socket source over NETLINK_SOCK_DIAG (encode → addon → decode). Stable API:
// the TCP work builds on SockDiagSource.query() and the DiagSocket shape.
export { SockDiagSource, type NetnsRef } from './source.js';
export { decodeDiagReply, SockDiagParseError, type DiagSocket, type SkMemInfo } from './decode.js';
export {
  encodeDiagRequest,
  portBytecode,
  type DiagRequest,
  AF_INET,
  AF_INET6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPPROTO_UDPLITE,
  IPPROTO_RAW,
  EXT_MEMINFO,
  EXT_INFO,
  EXT_SKMEMINFO,
  ALL_STATES,
} from './encode.js';
