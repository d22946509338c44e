/* pv-net: two PV guests on one bridge ping each other -- netfront, ARP,
 * IPv4, ICMP and UDP, written with xenlab mini-OS.
 *
 * Build (from the repository root):   make -C images
 *   (compiles the images/minios/ sources and this file with pv-pubhdr's CFLAGS and
 *    links them with include/pv-kernel.lds into pv-net/pv-net.elf)
 * Run both:  xenlab run images/pv-net-a.cfg images/pv-net-b.cfg
 *
 * The same kernel runs twice; the command line says who it is:
 *     ip=10.0.0.1 peer=10.0.0.2        (pv-net-a)
 *     ip=10.0.0.2 peer=10.0.0.1        (pv-net-b)
 *
 * What it does, with real Ethernet/ARP/IPv4/ICMP/UDP frames (RFC 826, 791,
 * 792, 768) and real Internet checksums (RFC 1071):
 *   - connects netfront (device/vif/0) to Dom0's netback;
 *   - ARP "who-has <peer>" every 10 ms of virtual time, up to 50 times,
 *     until answered (the peer may still be booting);
 *   - answers ARP requests for its own IP;
 *   - once it knows the peer's MAC: sends an ICMP echo request (payload
 *     "xenlab ping from <ip>") and a UDP datagram to the peer's port 7
 *     ("hello from <ip>"), each repeated every 100 ms until answered;
 *   - answers ICMP echo requests and echoes UDP sent to its port 7;
 *   - prints one tcpdump-like line per frame received (and sent);
 *   - when it got its echo reply and its UDP echo AND has answered the
 *     peer's ping and UDP, waits 20 ms more (to answer retransmissions) and
 *     powers off; after 2 s of virtual time it gives up (crash).
 */
#include "hypervisor.h"
#include "lib.h"
#include "xenbus.h"
#include "netfront.h"

MINIOS_GUEST_OS("xenlab-pv-net");

#define ETH_HLEN        14
#define ETH_ZLEN        60              /* minimum frame without FCS */
#define ETH_P_IP        0x0800
#define ETH_P_ARP       0x0806
#define IP_HLEN         20
#define IPPROTO_ICMP    1
#define IPPROTO_UDP     17
#define ICMP_ECHOREPLY  0
#define ICMP_ECHO       8
#define UDP_HLEN        8
#define ECHO_PORT       7               /* RFC 862 echo service */
#define MY_UDP_PORT     49152           /* our source port */

#define ARP_INTERVAL    MILLISECS(10)
#define ARP_TRIES       50
#define RETRY_INTERVAL  MILLISECS(100)  /* ping / UDP retransmission */
#define LINGER          MILLISECS(20)
#define GIVE_UP         MILLISECS(2000)

static const uint8_t broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static struct netfront_dev *dev;
static char name[64] = "pv-net";
static uint8_t my_mac[6], peer_mac[6];
static uint32_t my_ip, peer_ip;          /* host byte order */
static char my_ip_str[16], peer_ip_str[16];
static uint16_t ping_id, ip_ident;

static int peer_known;                   /* peer_mac is valid */
static int got_echo_reply, got_udp_echo, answered_ping, answered_udp;

/* ---------------------------------------------------------------------------
 * Byte order and formatting helpers.  Network order is big-endian; we keep
 * frames as byte arrays and read/write fields with these.
 * ------------------------------------------------------------------------- */
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p)
{ return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v)
{ p[0] = v >> 24; p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }

static const char *ip_str(uint32_t ip, char buf[16])
{
    snprintf(buf, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
    return buf;
}

static const char *mac_str(const uint8_t *m, char buf[18])
{
    snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    return buf;
}

/* The payload as a short quoted string for the log. */
static const char *payload_str(const uint8_t *p, unsigned len, char buf[48])
{
    unsigned i, n = len < 40 ? len : 40;
    buf[0] = '"';
    for (i = 0; i < n; i++)
        buf[i + 1] = (p[i] >= 32 && p[i] < 127) ? (char)p[i] : '.';
    buf[i + 1] = '"';
    buf[i + 2] = '\0';
    if (len > n)
        memcpy(buf + i + 2, "...", 4);
    return buf;
}

static uint32_t parse_ip(const char *s, const char **end)
{
    uint32_t ip = 0;
    for (int i = 0; i < 4; i++) {
        const char *e;
        unsigned long b = simple_strtoul(s, &e, 10);
        if (e == s || b > 255 || (i < 3 && *e != '.'))
            return 0;
        ip = ip << 8 | (uint32_t)b;
        s = i < 3 ? e + 1 : e;
    }
    if (end)
        *end = s;
    return ip;
}

/* "key=" value from the kernel command line, or 0 */
static uint32_t cmdline_ip(const char *cmdline, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = cmdline; *p; p++)
        if ((p == cmdline || p[-1] == ' ') && !strncmp(p, key, klen))
            return parse_ip(p + klen, NULL);
    return 0;
}

/* ---------------------------------------------------------------------------
 * The Internet checksum (RFC 1071): one's-complement sum of 16-bit words.
 * ------------------------------------------------------------------------- */
static uint32_t csum_add(uint32_t sum, const uint8_t *p, unsigned len)
{
    for (; len > 1; p += 2, len -= 2)
        sum += get16(p);
    if (len)
        sum += (uint32_t)p[0] << 8;             /* odd byte, zero padded */
    return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* UDP's pseudo header: source, destination, zero, protocol, UDP length */
static uint32_t pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, unsigned len)
{
    return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + len;
}

/* ---------------------------------------------------------------------------
 * Building frames
 * ------------------------------------------------------------------------- */
static uint8_t txbuf[1600];

static void send_frame(unsigned len)
{
    if (len < ETH_ZLEN) {                       /* pad runt frames */
        memset(txbuf + len, 0, ETH_ZLEN - len);
        len = ETH_ZLEN;
    }
    netfront_xmit(dev, txbuf, len);
}

static void eth_header(const uint8_t *dst, uint16_t type)
{
    memcpy(txbuf, dst, 6);
    memcpy(txbuf + 6, my_mac, 6);
    put16(txbuf + 12, type);
}

static void send_arp(uint16_t oper, const uint8_t *eth_dst, const uint8_t *tha, uint32_t tpa)
{
    uint8_t *a = txbuf + ETH_HLEN;
    char s1[16], s2[18];

    eth_header(eth_dst, ETH_P_ARP);
    put16(a + 0, 1);                            /* htype: Ethernet */
    put16(a + 2, ETH_P_IP);                     /* ptype: IPv4 */
    a[4] = 6;                                   /* hlen */
    a[5] = 4;                                   /* plen */
    put16(a + 6, oper);                         /* 1 request, 2 reply */
    memcpy(a + 8, my_mac, 6);                   /* sha */
    put32(a + 14, my_ip);                       /* spa */
    memcpy(a + 18, tha, 6);                     /* tha */
    put32(a + 24, tpa);                         /* tpa */
    if (oper == 1)
        printk("%s: tx ARP request who-has %s tell %s\n", name, ip_str(tpa, s1), my_ip_str);
    else
        printk("%s: tx ARP reply %s is-at %s to %s\n", name, my_ip_str,
               mac_str(my_mac, s2), ip_str(tpa, s1));
    send_frame(ETH_HLEN + 28);
}

/* IPv4 header in front of `len` bytes already placed at txbuf+34 */
static void send_ipv4(const uint8_t *dst_mac, uint32_t dst, uint8_t proto, unsigned len)
{
    uint8_t *ip = txbuf + ETH_HLEN;

    eth_header(dst_mac, ETH_P_IP);
    ip[0] = 0x45;                               /* version 4, 5 words */
    ip[1] = 0;                                  /* TOS */
    put16(ip + 2, IP_HLEN + len);               /* total length */
    put16(ip + 4, ip_ident++);                  /* identification */
    put16(ip + 6, 0x4000);                      /* DF, fragment offset 0 */
    ip[8] = 64;                                 /* TTL */
    ip[9] = proto;
    put16(ip + 10, 0);
    put32(ip + 12, my_ip);
    put32(ip + 16, dst);
    put16(ip + 10, csum_fold(csum_add(0, ip, IP_HLEN)));
    send_frame(ETH_HLEN + IP_HLEN + len);
}

static void send_icmp_echo(uint8_t type, const uint8_t *dst_mac, uint32_t dst,
                           uint16_t id, uint16_t seq, const void *data, unsigned len)
{
    uint8_t *icmp = txbuf + ETH_HLEN + IP_HLEN;
    char s1[16], s2[48];

    icmp[0] = type;
    icmp[1] = 0;                                /* code */
    put16(icmp + 2, 0);
    put16(icmp + 4, id);
    put16(icmp + 6, seq);
    memcpy(icmp + 8, data, len);
    put16(icmp + 2, csum_fold(csum_add(0, icmp, 8 + len)));
    printk("%s: tx ICMP echo %s to %s id 0x%x seq %u len %u %s\n", name,
           type == ICMP_ECHO ? "request" : "reply", ip_str(dst, s1), id, seq, len,
           payload_str(data, len, s2));
    send_ipv4(dst_mac, dst, IPPROTO_ICMP, 8 + len);
}

static void send_udp(const uint8_t *dst_mac, uint32_t dst, uint16_t sport, uint16_t dport,
                     const void *data, unsigned len)
{
    uint8_t *udp = txbuf + ETH_HLEN + IP_HLEN;
    uint16_t sum;
    char s1[16], s2[48];

    put16(udp + 0, sport);
    put16(udp + 2, dport);
    put16(udp + 4, UDP_HLEN + len);
    put16(udp + 6, 0);
    memcpy(udp + 8, data, len);
    sum = csum_fold(csum_add(pseudo_sum(my_ip, dst, IPPROTO_UDP, UDP_HLEN + len),
                             udp, UDP_HLEN + len));
    put16(udp + 6, sum ? sum : 0xffff);         /* 0 means "no checksum" */
    printk("%s: tx UDP %s.%u > %s.%u len %u %s\n", name, my_ip_str, sport,
           ip_str(dst, s1), dport, len, payload_str(data, len, s2));
    send_ipv4(dst_mac, dst, IPPROTO_UDP, UDP_HLEN + len);
}

/* ---------------------------------------------------------------------------
 * Receiving frames (netfront calls this for each one)
 * ------------------------------------------------------------------------- */
static void learn_peer(const uint8_t *mac)
{
    char s[18];
    if (peer_known)
        return;
    memcpy(peer_mac, mac, 6);
    peer_known = 1;
    printk("%s: peer %s is at %s\n", name, peer_ip_str, mac_str(mac, s));
}

static void rx_arp(const uint8_t *a, unsigned len)
{
    uint32_t spa, tpa;
    uint16_t oper;
    char s1[16], s2[16], s3[18];

    if (len < 28 || get16(a) != 1 || get16(a + 2) != ETH_P_IP || a[4] != 6 || a[5] != 4) {
        printk("%s: rx ARP (not Ethernet/IPv4), len %u\n", name, len);
        return;
    }
    oper = get16(a + 6);
    spa = get32(a + 14);
    tpa = get32(a + 24);
    if (oper == 1) {
        printk("%s: rx ARP request who-has %s tell %s (%s)\n", name,
               ip_str(tpa, s1), ip_str(spa, s2), mac_str(a + 8, s3));
        if (tpa == my_ip) {
            if (spa == peer_ip)
                learn_peer(a + 8);              /* RFC 826: merge the sender */
            send_arp(2, a + 8, a + 8, spa);
        }
    } else if (oper == 2) {
        printk("%s: rx ARP reply %s is-at %s\n", name, ip_str(spa, s1), mac_str(a + 8, s3));
        if (spa == peer_ip && tpa == my_ip)
            learn_peer(a + 8);
    } else {
        printk("%s: rx ARP oper %u\n", name, oper);
    }
}

static void rx_icmp(const uint8_t *eth_src, uint32_t src, const uint8_t *icmp, unsigned len)
{
    char s1[16], s2[48];
    uint16_t id, seq;

    if (len < 8 || csum_fold(csum_add(0, icmp, len)) != 0) {
        printk("%s: rx ICMP from %s: bad length or checksum, dropped\n", name, ip_str(src, s1));
        return;
    }
    id = get16(icmp + 4);
    seq = get16(icmp + 6);
    if (icmp[0] == ICMP_ECHO) {
        printk("%s: rx ICMP echo request from %s id 0x%x seq %u len %u %s\n", name,
               ip_str(src, s1), id, seq, len - 8, payload_str(icmp + 8, len - 8, s2));
        /* Echo reply: same id, seq and data (RFC 792) */
        send_icmp_echo(ICMP_ECHOREPLY, eth_src, src, id, seq, icmp + 8, len - 8);
        if (src == peer_ip)
            answered_ping = 1;
    } else if (icmp[0] == ICMP_ECHOREPLY) {
        printk("%s: rx ICMP echo reply from %s id 0x%x seq %u len %u %s\n", name,
               ip_str(src, s1), id, seq, len - 8, payload_str(icmp + 8, len - 8, s2));
        if (src == peer_ip && id == ping_id)
            got_echo_reply = 1;
    } else {
        printk("%s: rx ICMP type %u code %u from %s\n", name, icmp[0], icmp[1], ip_str(src, s1));
    }
}

static void rx_udp(const uint8_t *eth_src, uint32_t src, uint32_t dst,
                   const uint8_t *udp, unsigned len)
{
    char s1[16], s2[16], s3[48], expect[64];
    uint16_t sport, dport, ulen;

    if (len < UDP_HLEN || (ulen = get16(udp + 4)) < UDP_HLEN || ulen > len) {
        printk("%s: rx UDP from %s: bad length, dropped\n", name, ip_str(src, s1));
        return;
    }
    if (get16(udp + 6) != 0 &&                  /* 0: sender did not checksum */
        csum_fold(csum_add(pseudo_sum(src, dst, IPPROTO_UDP, ulen), udp, ulen)) != 0) {
        printk("%s: rx UDP from %s: bad checksum, dropped\n", name, ip_str(src, s1));
        return;
    }
    sport = get16(udp);
    dport = get16(udp + 2);
    printk("%s: rx UDP %s.%u > %s.%u len %u %s\n", name, ip_str(src, s1), sport,
           ip_str(dst, s2), dport, ulen - UDP_HLEN, payload_str(udp + 8, ulen - UDP_HLEN, s3));
    if (dport == ECHO_PORT) {
        send_udp(eth_src, src, ECHO_PORT, sport, udp + 8, ulen - UDP_HLEN);
        if (src == peer_ip)
            answered_udp = 1;
    } else if (dport == MY_UDP_PORT && src == peer_ip && sport == ECHO_PORT) {
        int n = snprintf(expect, sizeof(expect), "hello from %s", my_ip_str);
        if (ulen - UDP_HLEN == n && !memcmp(udp + 8, expect, n))
            got_udp_echo = 1;
        else
            printk("%s: UDP echo does not match what we sent\n", name);
    }
}

static void rx_ipv4(const uint8_t *eth_src, const uint8_t *ip, unsigned len)
{
    unsigned ihl, tot;
    uint32_t src, dst;
    char s1[16], s2[16];

    if (len < IP_HLEN || (ip[0] >> 4) != 4 || (ihl = (ip[0] & 15) * 4) < IP_HLEN ||
        (tot = get16(ip + 2)) < ihl || tot > len) {
        printk("%s: rx IPv4: malformed header, dropped\n", name);
        return;
    }
    src = get32(ip + 12);
    dst = get32(ip + 16);
    if (csum_fold(csum_add(0, ip, ihl)) != 0) {
        printk("%s: rx IPv4 %s > %s: bad header checksum, dropped\n", name,
               ip_str(src, s1), ip_str(dst, s2));
        return;
    }
    if (dst != my_ip) {
        printk("%s: rx IPv4 %s > %s: not for us\n", name, ip_str(src, s1), ip_str(dst, s2));
        return;
    }
    if (get16(ip + 6) & 0x3fff) {               /* MF or a fragment offset */
        printk("%s: rx IPv4 fragment from %s, dropped\n", name, ip_str(src, s1));
        return;
    }
    switch (ip[9]) {
    case IPPROTO_ICMP:
        rx_icmp(eth_src, src, ip + ihl, tot - ihl);
        break;
    case IPPROTO_UDP:
        rx_udp(eth_src, src, dst, ip + ihl, tot - ihl);
        break;
    default:
        printk("%s: rx IPv4 %s > %s proto %u len %u\n", name, ip_str(src, s1),
               ip_str(dst, s2), ip[9], tot - ihl);
    }
}

static void net_receive(struct netfront_dev *d, const uint8_t *frame, unsigned len)
{
    char s1[18], s2[18];
    (void)d;

    if (len < ETH_HLEN) {
        printk("%s: rx runt frame of %u bytes\n", name, len);
        return;
    }
    if (memcmp(frame, my_mac, 6) && memcmp(frame, broadcast, 6)) {
        printk("%s: rx frame %s > %s: not for us\n", name, mac_str(frame + 6, s1),
               mac_str(frame, s2));
        return;
    }
    switch (get16(frame + 12)) {
    case ETH_P_ARP:
        rx_arp(frame + ETH_HLEN, len - ETH_HLEN);
        break;
    case ETH_P_IP:
        rx_ipv4(frame + 6, frame + ETH_HLEN, len - ETH_HLEN);
        break;
    default:
        printk("%s: rx %s > %s ethertype 0x%04x len %u\n", name, mac_str(frame + 6, s1),
               mac_str(frame, s2), get16(frame + 12), len);
    }
}

/* ---------------------------------------------------------------------------
 * Main loop
 * ------------------------------------------------------------------------- */
static uint64_t earlier(uint64_t a, uint64_t b) { return a && a < b ? a : b; }

int app_main(start_info_t *si)
{
    char buf[64];
    uint64_t start, now, next_arp, next_ping = 0, next_udp = 0, done_at = 0;
    unsigned arp_tries = 0;
    uint16_t ping_seq = 0;
    int arp_gave_up = 0;

    if (xenbus_read(XBT_NIL, "name", buf, sizeof(buf)) == 0)
        strncpy0(name, buf, sizeof(name));
    my_ip = cmdline_ip((const char *)si->cmd_line, "ip=");
    peer_ip = cmdline_ip((const char *)si->cmd_line, "peer=");
    if (!my_ip || !peer_ip) {
        printk("%s: need \"ip=A.B.C.D peer=A.B.C.D\" on the command line, got \"%s\"\n",
               name, (const char *)si->cmd_line);
        return 1;
    }
    ip_str(my_ip, my_ip_str);
    ip_str(peer_ip, peer_ip_str);
    ping_id = 0x1000 | (my_ip & 0xff);
    ip_ident = (uint16_t)(my_ip << 8);
    printk("%s: ip %s, peer %s\n", name, my_ip_str, peer_ip_str);

    dev = init_netfront("device/vif/0", net_receive);
    if (!dev) {
        printk("%s: could not connect the network interface\n", name);
        return 1;
    }
    memcpy(my_mac, dev->mac, 6);

    start = monotonic_clock();
    next_arp = start;
    for (;;) {
        uint64_t wake;

        netfront_poll(dev);                     /* handles every frame */
        now = monotonic_clock();

        if (got_echo_reply && got_udp_echo && answered_ping && answered_udp) {
            if (!done_at) {
                done_at = now;
                printk("%s: ping and UDP echo done both ways; lingering 20 ms\n", name);
            } else if (now >= done_at + LINGER) {
                break;
            }
        }
        if (now >= start + GIVE_UP) {
            printk("%s: giving up after 2 s: peer %s, echo reply %s, UDP echo %s, "
                   "answered ping %s, answered UDP %s\n", name,
                   peer_known ? "known" : "unknown", got_echo_reply ? "yes" : "no",
                   got_udp_echo ? "yes" : "no", answered_ping ? "yes" : "no",
                   answered_udp ? "yes" : "no");
            return 1;
        }

        wake = start + GIVE_UP;
        if (done_at)
            wake = earlier(done_at + LINGER, wake);
        if (!peer_known) {
            if (arp_tries < ARP_TRIES && now >= next_arp) {
                send_arp(1, broadcast, (const uint8_t *)"\0\0\0\0\0\0", peer_ip);
                arp_tries++;
                next_arp = now + ARP_INTERVAL;
            } else if (arp_tries >= ARP_TRIES && !arp_gave_up) {
                printk("%s: no ARP reply from %s after %u requests\n", name,
                       peer_ip_str, ARP_TRIES);
                arp_gave_up = 1;
            }
            if (arp_tries < ARP_TRIES)
                wake = earlier(next_arp, wake);
        } else {
            if (!got_echo_reply && now >= next_ping) {
                static char msg[48];
                int n = snprintf(msg, sizeof(msg), "xenlab ping from %s", my_ip_str);
                send_icmp_echo(ICMP_ECHO, peer_mac, peer_ip, ping_id, ++ping_seq, msg, n);
                next_ping = now + RETRY_INTERVAL;
            }
            if (!got_udp_echo && now >= next_udp) {
                static char msg[48];
                int n = snprintf(msg, sizeof(msg), "hello from %s", my_ip_str);
                send_udp(peer_mac, peer_ip, MY_UDP_PORT, ECHO_PORT, msg, n);
                next_udp = now + RETRY_INTERVAL;
            }
            if (!got_echo_reply)
                wake = earlier(next_ping, wake);
            if (!got_udp_echo)
                wake = earlier(next_udp, wake);
        }
        block_until(netfront_has_work, dev, wake);
    }
    printk("%s: done, powering off\n", name);
    return 0;
}
