"""Network probes: the sandbox has its own network namespace with only `lo`, and socket families
beyond AF_UNIX/AF_INET/AF_INET6 (and NETLINK_ROUTE) are refused by the built-in filter.

Connections use short timeouts; a probe that reaches something sends at most one DNS query or
opens one TCP connection and closes it. Families are tried with an invalid socket type: the
kernel checks the type before it looks at the family, so an allowed call fails with EINVAL and
creates nothing, while the filter answers EAFNOSUPPORT / EPROTONOSUPPORT.
"""
import socket
import struct

from mcpx_probe import Skip, contained, ename, escaped, host, probe

AF_ALG = 38
AF_VSOCK = 40
AF_PACKET = 17
AF_NETLINK = 16
NETLINK_ROUTE = 0
NETLINK_AUDIT = 9
NETLINK_KOBJECT_UEVENT = 15
BAD_TYPE = 0x7F  # no such socket type, and flag bits that are not SOCK_CLOEXEC/SOCK_NONBLOCK
FILTERED = {"EAFNOSUPPORT": "family filter", "EPROTONOSUPPORT": "netlink protocol filter",
            "ENOSYS": "profile default", "EPERM": "built-in filter"}


def _connect(family, kind, addr, timeout=2.0, payload=None):
    """"connected", "sent" or the errno name of what stopped it (socket() included)."""
    try:
        s = socket.socket(family, kind)
    except OSError as e:
        return "socket: " + ename(e)
    try:
        s.settimeout(timeout)
        if payload is not None:
            s.sendto(payload, addr)
            return "sent"
        s.connect(addr)
        return "connected"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return ename(e)
    finally:
        s.close()


def _why(answer, reason):
    """The reason for a refusal: `reason`, unless socket() itself was refused."""
    if answer.startswith("socket: "):
        return FILTERED.get(answer[8:], "socket refused")
    return reason


def _port():
    port = host().get("loopback_port")
    if not port:
        raise Skip("host().loopback_port not given (a run by hand without a host listener)")
    return int(port)


@probe("net.host-loopback", "connect to the server's listener on the host's 127.0.0.1")
def host_loopback():
    port = _port()
    answer = _connect(socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", port))
    if answer == "connected":
        return escaped("connected to the host's 127.0.0.1:%d" % port)
    return contained("127.0.0.1:%d -> %s: %s" % (
        port, answer, _why(answer, "own net namespace, the host's listener is not here")))


@probe("net.tcp-outside", "TCP connect to 1.1.1.1:53 (2 s timeout)")
def tcp_outside():
    answer = _connect(socket.AF_INET, socket.SOCK_STREAM, ("1.1.1.1", 53))
    if answer == "connected":
        return escaped("connected to 1.1.1.1:53")
    if answer == "timeout":
        return escaped("no answer in 2 s: a route exists, packets may leave")
    return contained("1.1.1.1:53 -> %s: %s" % (answer, _why(answer, "no route out")))


# A DNS query for example.com, type A: what a resolver would send.
DNS_QUERY = (struct.pack(">HHHHHH", 0x4D43, 0x0100, 1, 0, 0, 0)
             + b"\x07example\x03com\x00" + struct.pack(">HH", 1, 1))


@probe("net.udp-outside", "UDP sendto 8.8.8.8:53 (one DNS query)")
def udp_outside():
    answer = _connect(socket.AF_INET, socket.SOCK_DGRAM, ("8.8.8.8", 53), payload=DNS_QUERY)
    if answer == "sent":
        return escaped("a UDP datagram to 8.8.8.8:53 was sent: a route exists")
    return contained("sendto 8.8.8.8:53 -> %s: %s" % (answer, _why(answer, "no route out")))


@probe("net.dns", "resolve example.com with getaddrinfo")
def dns():
    try:
        infos = socket.getaddrinfo("example.com", 443, proto=socket.IPPROTO_TCP)
    except OSError as e:
        return contained("getaddrinfo(example.com): %s" % (e.strerror or e))
    addrs = sorted({i[4][0] for i in infos})
    return escaped("example.com resolved to " + ", ".join(addrs[:3]))


@probe("net.ipv6", "AF_INET6: connect to [2606:4700:4700::1111]:53 and to [::1] at the host's port")
def ipv6():
    outside = _connect(socket.AF_INET6, socket.SOCK_STREAM, ("2606:4700:4700::1111", 53))
    port = host().get("loopback_port") or 53
    loop = _connect(socket.AF_INET6, socket.SOCK_STREAM, ("::1", int(port)))
    if "connected" in (outside, loop) or outside == "timeout":
        return escaped("[2606:4700:4700::1111]:53 -> %s, [::1]:%s -> %s" % (outside, port, loop))
    return contained("[2606:4700:4700::1111]:53 -> %s; [::1]:%s -> %s: %s"
                     % (outside, port, loop, _why(outside, "no IPv6 way out")))


@probe("net.abstract-unix", "connect to the server's abstract unix socket on the host")
def abstract_unix():
    name = host().get("abstract_socket")
    if not name:
        raise Skip("host().abstract_socket not given (a run by hand without a host listener)")
    answer = _connect(socket.AF_UNIX, socket.SOCK_STREAM, "\0" + name)
    if answer == "connected":
        return escaped("connected to the host's abstract socket @%s" % name)
    why = "Landlock scope" if answer == "EPERM" else "abstract names are per net namespace"
    return contained("@%s -> %s: %s" % (name, answer, why))


def _family(family, protocol=0):
    """socket(family, BAD_TYPE, protocol): the filter's errno, or the kernel's EINVAL."""
    try:
        socket.socket(family, BAD_TYPE, protocol).close()
    except OSError as e:
        return ename(e)
    return "ok"


def _family_probe(label, family, protocol=0):
    answer = _family(family, protocol)
    if answer in FILTERED:
        return contained("socket(%s) -> %s (%s)" % (label, answer, FILTERED[answer]))
    return escaped("socket(%s, bad type) reached the kernel: %s" % (label, answer))


@probe("net.af-alg", "socket(AF_ALG): kernel crypto API")
def af_alg():
    return _family_probe("AF_ALG", AF_ALG)


@probe("net.af-vsock", "socket(AF_VSOCK): not namespaced, reaches the hypervisor")
def af_vsock():
    return _family_probe("AF_VSOCK", AF_VSOCK)


@probe("net.af-packet", "socket(AF_PACKET): raw link-layer frames")
def af_packet():
    return _family_probe("AF_PACKET", AF_PACKET)


@probe("net.raw-inet", "socket(AF_INET, SOCK_RAW, ICMP)")
def raw_inet():
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    except OSError as e:
        why = {"EPERM": "no CAP_NET_RAW", "EAFNOSUPPORT": "family filter",
               "ENOSYS": "profile default"}.get(ename(e), "refused")
        return contained("raw ICMP socket -> %s (%s)" % (ename(e), why))
    s.close()
    return escaped("opened a raw ICMP socket (CAP_NET_RAW inside the sandbox)")


def _netlink_links():
    """Interface names from an RTM_GETLINK dump on NETLINK_ROUTE."""
    s = socket.socket(AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    try:
        s.settimeout(2.0)
        s.bind((0, 0))
        RTM_GETLINK, NLM_F_REQUEST, NLM_F_DUMP = 18, 1, 0x300
        body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0)  # struct ifinfomsg
        s.send(struct.pack("=IHHII", 16 + len(body), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP,
                           1, 0) + body)
        names = []
        while True:
            data = s.recv(65536)
            off = 0
            while off + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, off)
                if kind == 3:  # NLMSG_DONE
                    return names
                if kind == 2:  # NLMSG_ERROR
                    raise OSError(-struct.unpack_from("=i", data, off + 16)[0], "netlink error")
                attr = off + 16 + 16
                while attr + 4 <= off + length:
                    alen, atype = struct.unpack_from("=HH", data, attr)
                    if alen < 4:
                        break
                    if atype == 3:  # IFLA_IFNAME
                        names.append(data[attr + 4:attr + alen].split(b"\0")[0].decode())
                    attr += (alen + 3) & ~3
                off += (length + 3) & ~3
    finally:
        s.close()


@probe("net.netlink-route", "NETLINK_ROUTE link dump: which interfaces the namespace has")
def netlink_route():
    try:
        names = _netlink_links()
    except OSError as e:
        return contained("NETLINK_ROUTE socket: %s (%s)" % (ename(e),
                                                             FILTERED.get(ename(e), "refused")))
    if names == ["lo"]:
        return contained("own namespace, interfaces: lo")
    return escaped("interfaces: " + ", ".join(names))


@probe("net.netlink-other", "NETLINK_AUDIT, NETLINK_KOBJECT_UEVENT (host audit and uevents)")
def netlink_other():
    answers = [("AUDIT", _family(AF_NETLINK, NETLINK_AUDIT)),
               ("KOBJECT_UEVENT", _family(AF_NETLINK, NETLINK_KOBJECT_UEVENT))]
    reached = ["%s %s" % a for a in answers if a[1] not in FILTERED]
    if reached:
        return escaped("reached the kernel (bad type): " + ", ".join(reached))
    if answers[0][1] == answers[1][1]:
        a = answers[0][1]
        return contained("NETLINK_AUDIT, _KOBJECT_UEVENT -> %s (%s)" % (a, FILTERED[a]))
    return contained("; ".join("NETLINK_%s -> %s" % a for a in answers))


@probe("net.interfaces", "list interfaces (if_nameindex, /proc/net/dev): only lo")
def interfaces():
    names, parts = set(), []
    try:
        found = sorted(n for _, n in socket.if_nameindex())
        names.update(found)
        parts.append("if_nameindex: " + ", ".join(found))
    except OSError as e:
        parts.append("if_nameindex: " + ename(e))
    try:
        with open("/proc/net/dev") as f:
            found = sorted(line.split(":")[0].strip() for line in f if ":" in line)
        names.update(found)
        parts.append("/proc/net/dev: " + ", ".join(found))
    except OSError as e:
        parts.append("/proc/net/dev: " + ename(e))
    if names - {"lo"}:
        return escaped("; ".join(parts))
    return contained("; ".join(parts))
