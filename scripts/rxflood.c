/* rxflood: makes socket receive drops on purpose, for rxtrace's live tests and benchmarks.
 * sink/send: an unread tiny-rcvbuf UDP socket and a sendmmsg flood; ping-sink/ping-send: the
 * same for ICMP ping sockets. Traffic is meant for loopback or a test's own network namespace. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef ICMP_FILTER
#define ICMP_FILTER 1 /* <linux/icmp.h>; glibc's headers lack it */
#endif
#define BATCH 64
#define MAXSIZE 65507

static const char *usage_text =
    "usage:\n"
    "  rxflood sink --bind ADDR:PORT [--rcvbuf N] [--reuseaddr] [--reuseport] [--v6only 0|1]\n"
    "               [--join GROUP[@IFADDR|@IFNAME]] [--drain] [--comm NAME]\n"
    "  rxflood send --to ADDR:PORT (-n COUNT | --duration SECONDS) [--size BYTES]\n"
    "               [--mcast-if IFADDR] [--from ADDR[:PORT]]\n"
    "  rxflood ping-sink [--bind ADDR] [--rcvbuf N] [--send COUNT] [--comm NAME]\n"
    "  rxflood ping-send --to ADDR -n COUNT [--id ID] [--size BYTES]\n"
    "ADDR is IPv4 or IPv6 (write [::1]:5000 with a port). sink and ping-sink print\n"
    "'READY <port|ident> <inode>' and run until stdin closes or SIGTERM. ping-sink reads\n"
    "'send N' lines on stdin: it sends N echo requests from its own (unread) socket.\n";

static void usage(const char *why) {
  if (why) fprintf(stderr, "rxflood: %s\n", why);
  fputs(usage_text, stderr);
  exit(2);
}

static void die(const char *what) {
  fprintf(stderr, "rxflood: %s: %s\n", what, strerror(errno));
  exit(1);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long parse_num(const char *s, long lo, long hi, const char *what) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) {
    char msg[128];
    snprintf(msg, sizeof msg, "bad %s: '%s'", what, s);
    usage(msg);
  }
  return v;
}

static double parse_secs(const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end || !(v > 0 && v <= 86400)) usage("bad --duration");
  return v;
}

/* "1.2.3.4", "::1", "[::1]", optionally followed by ":PORT" (required if need_port). */
static socklen_t parse_addr(const char *arg, int need_port, struct sockaddr_storage *ss) {
  char host[INET6_ADDRSTRLEN + 2];
  const char *port = NULL;
  memset(ss, 0, sizeof *ss);
  if (arg[0] == '[') {
    const char *close = strchr(arg, ']');
    if (!close || (size_t)(close - arg - 1) >= sizeof host) usage("bad IPv6 address");
    memcpy(host, arg + 1, close - arg - 1);
    host[close - arg - 1] = 0;
    if (close[1] == ':') port = close + 2;
    else if (close[1]) usage("bad address");
  } else {
    const char *colon = strrchr(arg, ':');
    int v6 = colon && strchr(arg, ':') != colon; /* several colons: bare IPv6, no port */
    size_t n = (colon && !v6) ? (size_t)(colon - arg) : strlen(arg);
    if (n >= sizeof host) usage("bad address");
    memcpy(host, arg, n);
    host[n] = 0;
    if (colon && !v6) port = colon + 1;
  }
  if (need_port && !port) usage("address needs a port (ADDR:PORT, [ADDR6]:PORT)");
  int p = port ? (int)parse_num(port, 0, 65535, "port") : 0;
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(p);
    return sizeof *s4;
  }
  if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(p);
    return sizeof *s6;
  }
  usage("bad address (numeric IPv4 or IPv6 only)");
  return 0;
}

static int local_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) die("getsockname");
  return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                       : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* As root, SO_RCVBUFFORCE passes net.core.rmem_max; otherwise fall back to SO_RCVBUF. */
static void set_rcvbuf(int fd, int n) {
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &n, sizeof n) == 0) return;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &n, sizeof n) < 0) die("setsockopt SO_RCVBUF");
}

static void ready(int fd, int port, const char *comm) {
  struct stat st;
  if (fstat(fd, &st) < 0) die("fstat");
  if (comm && prctl(PR_SET_NAME, comm, 0, 0, 0) < 0) die("prctl PR_SET_NAME");
  printf("READY %d %lu\n", port, (unsigned long)st.st_ino);
  fflush(stdout);
}

static void sent_line(FILE *f, long sent, double secs) {
  fprintf(f, "SENT %ld %.6f %.0f\n", sent, secs, secs > 0 ? sent / secs : 0.0);
  fflush(f);
}

/* Send `count` datagrams (count < 0: until `duration`) of `size` bytes on fd, 64 per sendmmsg.
 * `to` may be NULL for a connected socket. Errors the tests expect are counted, not fatal. */
static long flood(int fd, const struct sockaddr_storage *to, socklen_t tolen, const void *buf,
                  size_t size, long count, double duration, long *errs) {
  struct mmsghdr msgs[BATCH];
  struct iovec iov = {(void *)buf, size};
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < BATCH; i++) {
    msgs[i].msg_hdr.msg_iov = &iov;
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = (void *)to;
    msgs[i].msg_hdr.msg_namelen = to ? tolen : 0;
  }
  long sent = 0, tried = 0;
  double end = duration > 0 ? now_s() + duration : 0;
  for (unsigned loops = 0; count < 0 || tried < count; loops++) {
    if (end && loops % 16 == 0 && now_s() >= end) break;
    unsigned n = BATCH;
    if (count >= 0 && count - tried < BATCH) n = count - tried;
    int r = sendmmsg(fd, msgs, n, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno != ECONNREFUSED && errno != ENOBUFS && errno != EAGAIN) die("sendmmsg");
      (*errs)++, tried++; /* that datagram was not sent */
      continue;
    }
    sent += r, tried += r;
    /* a short batch means message r failed; sendmmsg reports no error once some were sent */
    if ((unsigned)r < n) (*errs)++, tried++;
  }
  return sent;
}

/* Wait until stdin closes; if drain_fd >= 0, read it as fast as possible meanwhile. */
static void wait_stdin(int drain_fd) {
  static char buf[MAXSIZE + 1];
  struct pollfd p[2] = {{0, POLLIN, 0}, {drain_fd, POLLIN, 0}};
  for (;;) {
    if (poll(p, drain_fd >= 0 ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (p[0].revents) {
      ssize_t r = read(0, buf, sizeof buf);
      if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) return;
    }
    if (drain_fd >= 0 && (p[1].revents & POLLIN))
      while (recv(drain_fd, buf, sizeof buf, MSG_DONTWAIT) >= 0) {
      }
  }
}

static int cmd_sink(int argc, char **argv) {
  const char *bind_s = NULL, *join = NULL, *comm = NULL;
  int rcvbuf = -1, reuseaddr = 0, reuseport = 0, v6only = -1, drain = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--reuseaddr")) reuseaddr = 1;
    else if (!strcmp(a, "--reuseport")) reuseport = 1;
    else if (!strcmp(a, "--drain")) drain = 1;
    else if (!v) usage("missing option value");
    else if (!strcmp(a, "--bind")) bind_s = v, i++;
    else if (!strcmp(a, "--rcvbuf")) rcvbuf = parse_num(v, 0, INT_MAX, "--rcvbuf"), i++;
    else if (!strcmp(a, "--v6only")) v6only = parse_num(v, 0, 1, "--v6only"), i++;
    else if (!strcmp(a, "--join")) join = v, i++;
    else if (!strcmp(a, "--comm")) comm = v, i++;
    else usage("unknown sink option");
  }
  if (!bind_s) usage("sink needs --bind ADDR:PORT");
  struct sockaddr_storage addr;
  socklen_t alen = parse_addr(bind_s, 1, &addr);
  int fam = addr.ss_family, one = 1;
  int fd = socket(fam, SOCK_DGRAM, IPPROTO_UDP);
  if (fd < 0) die("socket");
  if (rcvbuf >= 0) set_rcvbuf(fd, rcvbuf);
  if (reuseaddr && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
    die("SO_REUSEADDR");
  if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
    die("SO_REUSEPORT");
  if (v6only >= 0) {
    if (fam != AF_INET6) usage("--v6only needs an IPv6 --bind");
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0) die("IPV6_V6ONLY");
  }
  if (bind(fd, (struct sockaddr *)&addr, alen) < 0) die("bind");
  if (join) {
    char group[INET6_ADDRSTRLEN + 2];
    const char *at = strchr(join, '@');
    size_t n = at ? (size_t)(at - join) : strlen(join);
    if (n >= sizeof group) usage("bad --join group");
    memcpy(group, join, n);
    group[n] = 0;
    struct ip_mreq m4 = {0};
    struct ipv6_mreq m6 = {0};
    if (inet_pton(AF_INET, group, &m4.imr_multiaddr) == 1) {
      if (inet_pton(AF_INET, at ? at + 1 : "127.0.0.1", &m4.imr_interface) != 1)
        usage("bad --join interface address");
      if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m4, sizeof m4) < 0)
        die("IP_ADD_MEMBERSHIP");
    } else if (inet_pton(AF_INET6, group, &m6.ipv6mr_multiaddr) == 1) {
      m6.ipv6mr_interface = if_nametoindex(at ? at + 1 : "lo");
      if (!m6.ipv6mr_interface) usage("bad --join interface name");
      if (setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m6, sizeof m6) < 0)
        die("IPV6_JOIN_GROUP");
    } else {
      usage("bad --join group");
    }
  }
  ready(fd, local_port(fd), comm);
  wait_stdin(drain ? fd : -1);
  return 0;
}

static int cmd_send(int argc, char **argv) {
  const char *to_s = NULL, *mif = NULL, *from = NULL;
  long count = -1, size = 16;
  double duration = 0;
  for (int i = 0; i < argc; i += 2) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) usage("missing option value");
    if (!strcmp(a, "--to")) to_s = v;
    else if (!strcmp(a, "-n")) count = parse_num(v, 0, LONG_MAX, "-n");
    else if (!strcmp(a, "--size")) size = parse_num(v, 0, MAXSIZE, "--size");
    else if (!strcmp(a, "--mcast-if")) mif = v;
    else if (!strcmp(a, "--from")) from = v;
    else if (!strcmp(a, "--duration")) duration = parse_secs(v);
    else usage("unknown send option");
  }
  if (!to_s || (count < 0 && duration <= 0)) usage("send needs --to and -n or --duration");
  struct sockaddr_storage to, src;
  socklen_t tolen = parse_addr(to_s, 1, &to);
  int fam = to.ss_family;
  int fd = socket(fam, SOCK_DGRAM, IPPROTO_UDP);
  if (fd < 0) die("socket");
  if (from) {
    socklen_t slen = parse_addr(from, 0, &src);
    if (src.ss_family != fam) usage("--from and --to must be the same family");
    if (bind(fd, (struct sockaddr *)&src, slen) < 0) die("bind --from");
  }
  int mcast = fam == AF_INET ? IN_MULTICAST(ntohl(((struct sockaddr_in *)&to)->sin_addr.s_addr))
                             : IN6_IS_ADDR_MULTICAST(&((struct sockaddr_in6 *)&to)->sin6_addr);
  if (mcast) {
    int one = 1;
    if (fam == AF_INET) {
      struct in_addr ifa;
      if (inet_pton(AF_INET, mif ? mif : "127.0.0.1", &ifa) != 1) usage("bad --mcast-if");
      if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &ifa, sizeof ifa) < 0) die("IP_MULTICAST_IF");
      if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof one) < 0)
        die("IP_MULTICAST_LOOP");
    } else {
      unsigned idx = if_nametoindex(mif ? mif : "lo");
      if (!idx) usage("bad --mcast-if (an interface name for IPv6)");
      if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx) < 0)
        die("IPV6_MULTICAST_IF");
      if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &one, sizeof one) < 0)
        die("IPV6_MULTICAST_LOOP");
    }
  } else if (mif) {
    usage("--mcast-if needs a multicast --to");
  }
  /* connect() caches the route, which is what makes ~1 M datagrams/s possible */
  if (connect(fd, (struct sockaddr *)&to, tolen) < 0) die("connect");
  static char buf[MAXSIZE];
  memset(buf, 'x', size);
  long errs = 0;
  double t0 = now_s();
  long sent = flood(fd, NULL, 0, buf, size, count, duration, &errs);
  double secs = now_s() - t0;
  if (errs) fprintf(stderr, "SENDERR %ld\n", errs);
  sent_line(stdout, sent, secs);
  return 0;
}

static int ping_socket(int fam) {
  int fd = socket(fam, SOCK_DGRAM, fam == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6);
  if (fd < 0 && errno == EACCES) {
    fprintf(stderr, "rxflood: ping socket: EACCES: this gid (%u) is outside "
                    "net.ipv4.ping_group_range of this network namespace (set it to \"0 0\")\n",
            (unsigned)getgid());
    exit(3);
  }
  if (fd < 0) die("ping socket");
  return fd;
}

/* An echo request; a ping socket overwrites the id with its ident and fills the checksum. */
static size_t echo_packet(int fam, int reply, uint16_t id, char *pkt, size_t size) {
  memset(pkt, 0, sizeof(struct icmphdr) + size);
  memset(pkt + sizeof(struct icmphdr), 'x', size);
  struct icmphdr *h = (struct icmphdr *)pkt;
  if (fam == AF_INET) h->type = reply ? ICMP_ECHOREPLY : ICMP_ECHO;
  else h->type = reply ? ICMP6_ECHO_REPLY : ICMP6_ECHO_REQUEST;
  h->un.echo.id = htons(id);
  h->un.echo.sequence = htons(1);
  size_t len = sizeof *h + size;
  if (fam == AF_INET && reply) { /* raw IPv4 ICMP: we compute the checksum */
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2) sum += (uint8_t)pkt[i] << 8 | (uint8_t)pkt[i + 1];
    if (len & 1) sum += (uint8_t)pkt[len - 1] << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    h->checksum = htons(~sum & 0xffff);
  }
  return len;
}

static void ping_flood(int fd, const struct sockaddr_storage *to, socklen_t tolen, const char *pkt,
                       size_t len, long count) {
  long errs = 0;
  double t0 = now_s();
  long sent = flood(fd, to, tolen, pkt, len, count, 0, &errs);
  if (errs) fprintf(stderr, "SENDERR %ld\n", errs);
  sent_line(stdout, sent, now_s() - t0);
}

static int cmd_ping_sink(int argc, char **argv) {
  const char *bind_s = "127.0.0.1", *comm = NULL;
  long send_n = 0;
  int rcvbuf = 1;
  for (int i = 0; i < argc; i += 2) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) usage("missing option value");
    if (!strcmp(a, "--bind")) bind_s = v;
    else if (!strcmp(a, "--comm")) comm = v;
    else if (!strcmp(a, "--send")) send_n = parse_num(v, 0, LONG_MAX, "--send");
    else if (!strcmp(a, "--rcvbuf")) rcvbuf = parse_num(v, 0, INT_MAX, "--rcvbuf");
    else usage("unknown ping-sink option");
  }
  struct sockaddr_storage addr, to;
  socklen_t alen = parse_addr(bind_s, 0, &addr);
  int fam = addr.ss_family;
  int fd = ping_socket(fam);
  set_rcvbuf(fd, rcvbuf);
  if (bind(fd, (struct sockaddr *)&addr, alen) < 0) die("bind"); /* port 0: kernel picks ident */
  /* echo requests go to the bound address, or to loopback when bound to the wildcard */
  to = addr;
  if (fam == AF_INET && ((struct sockaddr_in *)&to)->sin_addr.s_addr == htonl(INADDR_ANY))
    ((struct sockaddr_in *)&to)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fam == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&to)->sin6_addr))
    ((struct sockaddr_in6 *)&to)->sin6_addr = in6addr_loopback;
  static char pkt[sizeof(struct icmphdr) + 16];
  size_t len = echo_packet(fam, 0, 0, pkt, 16);
  ready(fd, local_port(fd), comm);
  if (send_n) ping_flood(fd, &to, alen, pkt, len, send_n);
  /* stdin: "send N" lines, until EOF */
  char line[128];
  while (fgets(line, sizeof line, stdin)) {
    long n;
    if (sscanf(line, "send %ld", &n) == 1 && n > 0) ping_flood(fd, &to, alen, pkt, len, n);
    else fprintf(stderr, "rxflood: ping-sink: expected 'send N'\n");
  }
  return 0;
}

/* Without --id: echo requests from a fresh ping socket (its replies come back to itself).
 * With --id: echo *replies* with that id from a raw socket (root/CAP_NET_RAW); the kernel
 * delivers them to the ping socket whose ident is ID, i.e. a ping-sink in another process. */
static int cmd_ping_send(int argc, char **argv) {
  const char *to_s = NULL;
  long count = -1, id = -1, size = 16;
  for (int i = 0; i < argc; i += 2) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) usage("missing option value");
    if (!strcmp(a, "--to")) to_s = v;
    else if (!strcmp(a, "-n")) count = parse_num(v, 0, LONG_MAX, "-n");
    else if (!strcmp(a, "--id")) id = parse_num(v, 0, 65535, "--id");
    else if (!strcmp(a, "--size")) size = parse_num(v, 0, 1400, "--size");
    else usage("unknown ping-send option");
  }
  if (!to_s || count < 0) usage("ping-send needs --to ADDR and -n COUNT");
  struct sockaddr_storage to;
  socklen_t tolen = parse_addr(to_s, 0, &to);
  int fam = to.ss_family, fd;
  if (id < 0) {
    fd = ping_socket(fam);
  } else {
    fd = socket(fam, SOCK_RAW, fam == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6);
    if (fd < 0) die("raw ICMP socket (needs CAP_NET_RAW)");
    /* receive nothing, so this socket never queues or drops the replies it sends */
    if (fam == AF_INET) {
      uint32_t all = ~0U;
      if (setsockopt(fd, SOL_RAW, ICMP_FILTER, &all, sizeof all) < 0) die("ICMP_FILTER");
    } else {
      struct icmp6_filter f;
      ICMP6_FILTER_SETBLOCKALL(&f);
      if (setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof f) < 0) die("ICMP6_FILTER");
    }
  }
  static char pkt[sizeof(struct icmphdr) + 1400];
  size_t len = echo_packet(fam, id >= 0, id >= 0 ? id : 0, pkt, size);
  ping_flood(fd, &to, tolen, pkt, len, count);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) usage(NULL);
  const char *cmd = argv[1];
  argc -= 2, argv += 2;
  if (!strcmp(cmd, "sink")) return cmd_sink(argc, argv);
  if (!strcmp(cmd, "send")) return cmd_send(argc, argv);
  if (!strcmp(cmd, "ping-sink")) return cmd_ping_sink(argc, argv);
  if (!strcmp(cmd, "ping-send")) return cmd_ping_send(argc, argv);
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
    fputs(usage_text, stdout);
    return 0;
  }
  usage("unknown subcommand");
  return 2;
}
