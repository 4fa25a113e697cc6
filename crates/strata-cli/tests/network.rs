//! Networking through the real binary and netavark, each test inside a
//! network namespace of its own (the harness's): published ports, user
//! networks with names, isolation, NAT to an "outside" namespace, cleanup
//! however a container goes, bad input.

#[macro_use]
mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A store with `net:1`: busybox with httpd, wget, nslookup and ip, and a page at /www.
fn with_image() -> Strata {
    let s = Strata::new("overlay");
    let bb = std::fs::read("/bin/busybox").unwrap();
    let mut t = LayerTar::new().dir("bin").dir("etc").dir("tmp").dir("www").file_mode("bin/busybox", &bb, 0o755);
    for c in ["sh", "cat", "httpd", "wget", "nslookup", "ip", "sleep", "echo", "true", "hostname", "timeout"] {
        t = t.symlink(&format!("bin/{c}"), "busybox");
    }
    let layer = t.file("www/index.html", b"hello from web\n").file("etc/passwd", PASSWD).build();
    let a = s.write("net.tar", &docker_archive(&[TestImage::new("net:1", vec![layer])]));
    s.ok(&["load", "-i", a.to_str().unwrap()]);
    s
}

/// A wget that gives up after 2 seconds, for `sh -c`: not the container's
/// pid 1, which ignores `timeout`'s TERM (the `exit` keeps sh from exec'ing
/// it in its place); busybox's own `wget -T` crashes.
fn fetch(url: &str) -> String {
    format!("timeout 2 wget -qO- {url}; exit $?")
}

/// A fetch that failed as a fetch (refused, unresolved, timed out), not a crash.
fn assert_unreachable(s: &Strata, args: &[&str], what: &str) {
    let (code, out, err) = s.code(args);
    assert!(code == 1 || code == 143, "{what}: exit {code}, out {out:?}, err {err:?}");
    assert!(out.is_empty(), "{what}: {out}");
}

/// curl from the test's namespace: the body, or None when it fails.
fn curl(s: &Strata, url: &str) -> Option<String> {
    let o = s.in_netns("curl").args(["-sf", "-m", "5", url]).output().unwrap();
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).to_string())
}

/// Wait until `url` answers (the server's socket is ready), at most a minute.
fn wait_for(s: &Strata, url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(body) = curl(s, url) {
            return body;
        }
        assert!(Instant::now() < deadline, "{url} never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ip(s: &Strata, args: &[&str]) {
    let st = s.in_netns("ip").args(args).status().unwrap();
    assert!(st.success(), "ip {args:?}");
}

/// A further namespace standing in for "outside", joined to the test's by a
/// veth pair: the test's side is 198.51.100.1 (the host's address), the
/// outside's 198.51.100.2. Removed on drop.
struct Outside {
    ns: std::path::PathBuf,
    server: Option<Child>,
}

impl Outside {
    fn new(s: &Strata) -> Self {
        let ns = s.dir.path().join("outside");
        std::fs::write(&ns, b"").unwrap();
        assert!(Command::new("unshare").arg(format!("--net={}", ns.display())).arg("true").status().unwrap().success());
        let out = Outside { ns, server: None };
        ip(s, &["link", "add", "to-out", "type", "veth", "peer", "name", "out0"]);
        ip(s, &["link", "set", "out0", "netns", &out.ns.display().to_string()]);
        ip(s, &["addr", "add", "198.51.100.1/24", "dev", "to-out"]);
        ip(s, &["link", "set", "to-out", "up"]);
        for args in [
            &["addr", "add", "198.51.100.2/24", "dev", "out0"][..],
            &["link", "set", "out0", "up"],
            &["link", "set", "lo", "up"],
        ] {
            let st = out.cmd("ip").args(args).status().unwrap();
            assert!(st.success(), "outside: ip {args:?}");
        }
        out
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.ns.display())).arg(program);
        c
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("umount").arg("-l").arg(&self.ns).status();
    }
}

#[test]
fn a_published_port_answers_on_loopback_the_host_address_and_to_other_containers() {
    let s = with_image();
    let _out = Outside::new(&s);
    s.ok(&["run", "-d", "--name", "web", "-p", "8080:80", "net:1", "httpd", "-f", "-p", "80", "-h", "/www"]);
    assert_eq!(wait_for(&s, "http://127.0.0.1:8080/"), "hello from web\n");
    assert_eq!(curl(&s, "http://198.51.100.1:8080/").as_deref(), Some("hello from web\n"));
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "web"])).unwrap();
    let web_ip = v[0]["NetworkSettings"]["Networks"]["bridge"]["IPAddress"].as_str().unwrap().to_string();
    assert_eq!(v[0]["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"], "8080");
    // Another container: through the published port on the host's address (hairpin), and directly.
    let via_port = s.ok(&["run", "--rm", "net:1", "wget", "-qO-", "http://198.51.100.1:8080/"]);
    assert_eq!(via_port, "hello from web\n");
    let direct = s.ok(&["run", "--rm", "net:1", "wget", "-qO-", &format!("http://{web_ip}/")]);
    assert_eq!(direct, "hello from web\n");
    let ps = s.ok(&["ps"]);
    assert!(ps.contains("0.0.0.0:8080->80/tcp"), "{ps}");
    s.ok(&["rm", "-f", "web"]);
}

#[test]
fn containers_on_a_user_network_find_each_other_by_name_and_alias_and_not_from_another() {
    let s = with_image();
    s.ok(&["network", "create", "front"]);
    s.ok(&["network", "create", "back"]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "api",
        "--network",
        "front",
        "--network-alias",
        "backend",
        "net:1",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "api"])).unwrap();
    let api_ip = v[0]["NetworkSettings"]["Networks"]["front"]["IPAddress"].as_str().unwrap().to_string();
    // Ready: the server answers on its address from the test's namespace (the host's side of the bridge).
    wait_for(&s, &format!("http://{api_ip}/"));
    let got = s.ok(&[
        "run",
        "--rm",
        "--network",
        "front",
        "net:1",
        "sh",
        "-c",
        "wget -qO- http://api/ && wget -qO- http://backend/",
    ]);
    assert_eq!(got, "hello from web\nhello from web\n");
    // From another network: the name is unknown, the address unreachable.
    let by_ip = fetch(&format!("http://{api_ip}/"));
    assert_unreachable(
        &s,
        &["run", "--rm", "--network", "back", "net:1", "sh", "-c", &fetch("http://api/")],
        "by name from back",
    );
    assert_unreachable(&s, &["run", "--rm", "--network", "back", "net:1", "sh", "-c", &by_ip], "by address from back");
    // The default bridge resolves no names, as Docker's.
    assert_unreachable(&s, &["run", "--rm", "net:1", "sh", "-c", &fetch("http://api/")], "by name from bridge");
    let (code, _, err) = s.code(&["network", "rm", "front"]);
    assert_eq!(code, 1);
    assert!(err.contains("api"), "the error names the container: {err}");
    s.ok(&["rm", "-f", "api"]);
    s.ok(&["network", "rm", "front", "back"]);
}

#[test]
fn outbound_traffic_is_masqueraded_and_an_internal_network_has_no_way_out() {
    let s = with_image();
    let mut out = Outside::new(&s);
    let log = s.dir.path().join("server.log");
    out.server = Some(
        out.cmd("python3")
            .args(["-m", "http.server", "--bind", "198.51.100.2", "9000"])
            .current_dir(s.dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for(&s, "http://198.51.100.2:9000/");
    let before = std::fs::read_to_string(&log).unwrap().lines().count();
    let (code, _, err) = s.code(&["run", "--rm", "net:1", "wget", "-qO", "/dev/null", "http://198.51.100.2:9000/"]);
    assert_eq!(code, 0, "{err}");
    let logged = std::fs::read_to_string(&log).unwrap();
    let from_container: Vec<&str> = logged.lines().skip(before).collect();
    assert_eq!(from_container.len(), 1, "{logged}");
    assert!(from_container[0].starts_with("198.51.100.1 "), "the server sees the host's address: {logged}");
    s.ok(&["network", "create", "--internal", "sealed"]);
    let out_url = fetch("http://198.51.100.2:9000/");
    assert_unreachable(
        &s,
        &["run", "--rm", "--network", "sealed", "net:1", "sh", "-c", &out_url],
        "outside from internal",
    );
    let routes = s.ok(&["run", "--rm", "--network", "sealed", "net:1", "ip", "route"]);
    assert!(!routes.is_empty() && !routes.contains("default"), "{routes}");
}

#[test]
fn publish_all_ranges_udp_and_random_host_ports_show_in_port_and_ps() {
    let s = with_image();
    let ctx = s.dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM net:1\nEXPOSE 80 53/udp\n").unwrap();
    s.ok(&["build", "-q", "-t", "exposed:1", ctx.to_str().unwrap()]);
    s.ok(&["run", "-d", "--name", "all", "-P", "exposed:1", "sleep", "1000"]);
    let port = s.ok(&["port", "all"]);
    let lines: Vec<&str> = port.lines().collect();
    assert_eq!(lines.len(), 2, "{port}");
    let random = |line: &str, prefix: &str| -> u16 {
        let rest = line.strip_prefix(prefix).unwrap_or_else(|| panic!("{line:?} starts with {prefix:?}"));
        rest.parse().unwrap()
    };
    let tcp = lines.iter().find(|l| l.starts_with("80/tcp")).unwrap();
    let udp = lines.iter().find(|l| l.starts_with("53/udp")).unwrap();
    let (t, u) = (random(tcp, "80/tcp -> 0.0.0.0:"), random(udp, "53/udp -> 0.0.0.0:"));
    assert!(t > 0 && u > 0);
    assert_eq!(s.ok(&["port", "all", "80"]).trim(), format!("0.0.0.0:{t}"));
    s.ok(&[
        "run",
        "-d",
        "--name",
        "ranges",
        "-p",
        "9000-9002:80-82",
        "-p",
        "127.0.0.1::7000/udp",
        "net:1",
        "sleep",
        "1000",
    ]);
    let port = s.ok(&["port", "ranges"]);
    for want in ["80/tcp -> 0.0.0.0:9000", "81/tcp -> 0.0.0.0:9001", "82/tcp -> 0.0.0.0:9002", "7000/udp -> 127.0.0.1:"]
    {
        assert!(port.lines().any(|l| l.starts_with(want)), "{want} in {port}");
    }
    let ps = s.ok(&["ps"]);
    assert!(ps.contains("0.0.0.0:9001->81/tcp") && ps.contains(&format!("0.0.0.0:{t}->80/tcp")), "{ps}");
    s.ok(&["rm", "-f", "all", "ranges"]);
}

/// What networking leaves in the test's namespace and the store.
fn network_state(s: &Strata) -> (Vec<String>, Vec<String>, Vec<String>, Vec<String>) {
    let links = s.in_netns("ip").args(["-o", "link", "show"]).output().unwrap();
    assert!(links.status.success());
    let links: Vec<String> = String::from_utf8_lossy(&links.stdout)
        .lines()
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        .collect();
    let rules = s.in_netns("iptables-save").output().unwrap();
    assert!(rules.status.success());
    let rules: Vec<String> =
        String::from_utf8_lossy(&rules.stdout).lines().filter(|l| !l.starts_with('#')).map(str::to_string).collect();
    let list = |p: std::path::PathBuf| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let dns = list(s.root().join("networks/netavark/aardvark-dns"));
    let dns: Vec<String> = dns.into_iter().filter(|f| f != "aardvark.pid").collect();
    let mut pinned = list(s.root().join("netns"));
    pinned.extend(mounts_under(s));
    (links, rules, dns, pinned)
}

#[test]
fn nothing_is_left_after_rm_f_run_rm_or_a_killed_monitor() {
    let s = with_image();
    let before_networks = network_state(&s);
    s.ok(&["network", "create", "named"]);
    // netavark keeps its shared chains (NETAVARK_FORWARD, the HOSTPORT ones) once made, as under
    // podman, and a network in use keeps its bridge and rules (its anchor) until `network rm`, as
    // Docker's: the baseline is taken after a first container on each network came and went.
    s.ok(&["run", "--rm", "-p", "8081:80", "net:1", "true"]);
    s.ok(&["run", "--rm", "--network", "named", "-p", "8081:80", "net:1", "true"]);
    let baseline = network_state(&s);
    let httpd = ["httpd", "-f", "-p", "80", "-h", "/www"];

    let mut args = vec!["run", "-d", "--name", "web-a", "--network", "named", "-p", "8080:80", "net:1"];
    args.extend(httpd);
    s.ok(&args);
    wait_for(&s, "http://127.0.0.1:8080/");
    assert_ne!(network_state(&s), baseline, "the running container shows in the state");
    s.ok(&["rm", "-f", "web-a"]);
    assert_eq!(network_state(&s), baseline, "after rm -f");

    let got = s.ok(&["run", "--rm", "--network", "named", "-p", "8080:80", "net:1", "cat", "/www/index.html"]);
    assert_eq!(got, "hello from web\n");
    assert_eq!(network_state(&s), baseline, "after run --rm");

    let mut args = vec!["run", "-d", "--name", "web-b", "--network", "named", "-p", "8080:80", "net:1"];
    args.extend(httpd);
    s.ok(&args);
    wait_for(&s, "http://127.0.0.1:8080/");
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "web-b"])).unwrap();
    let pid = v[0]["State"]["Pid"].as_i64().unwrap();
    // The monitor first, then the container: nobody is left to tear the network down.
    // The monitor is the container's parent.
    let monitor = parent_of(&pid.to_string());
    let exe = std::fs::read_link(format!("/proc/{monitor}/exe")).unwrap();
    assert_eq!(exe.file_name().unwrap(), "strata-monitor", "{exe:?}");
    assert!(Command::new("kill").args(["-KILL", &monitor.to_string()]).status().unwrap().success());
    assert!(Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "the container's process did not die");
        std::thread::sleep(Duration::from_millis(20));
    }
    s.ok(&["ps", "-a"]);
    assert_eq!(network_state(&s), baseline, "after a killed monitor and the next command");
    s.ok(&["rm", "web-b"]);
    // The last user gone, `network rm` takes the bridge, its rules, its DNS and its anchor.
    let bridge = serde_json::from_str::<serde_json::Value>(&s.ok(&["network", "inspect", "named"])).unwrap()[0]
        ["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(baseline.0.contains(&bridge), "{baseline:?}");
    s.ok(&["network", "rm", "named"]);
    let after = network_state(&s);
    assert!(!after.0.iter().any(|l| l == &bridge), "{after:?}");
    assert!(!after.1.iter().any(|r| r.contains("10.90.0.")), "no rule of the network's subnet: {after:?}");
    assert!(after.2.is_empty(), "no DNS entries: {after:?}");
    // Pinned namespaces (by file name) and their mounts: the default network's anchor only.
    let pinned: Vec<&String> = after.3.iter().filter(|p| !p.contains('/')).collect();
    assert_eq!(pinned.len(), 1, "{after:?}");
    assert!(after.3.iter().all(|p| p.ends_with(pinned[0].as_str())), "{after:?}");
    assert_eq!(before_networks.0, ["lo"], "{before_networks:?}");
}

#[test]
fn bad_network_input_is_refused_and_leaves_nothing() {
    let s = with_image();
    s.ok(&["network", "create", "--subnet", "10.123.0.0/24", "fixed"]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "holder",
        "--network",
        "fixed",
        "--ip",
        "10.123.0.9",
        "-p",
        "8080:80",
        "net:1",
        "sleep",
        "1000",
    ]);
    let before = (s.ok(&["ps", "-aq"]), s.ok(&["network", "ls", "-q"]), network_state(&s));
    let run_cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["-p", "80:"], "80:"),
        (vec!["-p", "70000:80"], "70000"),
        (vec!["-p", "abc"], "abc"),
        (vec!["-p", "8080:80"], "8080"),
        (vec!["--network", "nowhere"], "nowhere"),
        (vec!["--network", "fixed", "--ip", "10.124.0.5"], "10.124.0.5"),
        (vec!["--network", "fixed", "--ip", "10.123.0.9"], "10.123.0.9"),
        (vec!["--network", "none", "-p", "80"], "none"),
    ];
    for (flags, needle) in run_cases {
        for cmd in ["run", "create"] {
            let mut args = vec![cmd];
            args.extend(&flags);
            args.extend(["net:1", "true"]);
            let (code, _, err) = s.code(&args);
            assert_eq!(code, 125, "{args:?}: {err}");
            assert!(err.contains(needle), "{args:?} names {needle:?}: {err}");
        }
    }
    for (args, needle) in [
        (vec!["network", "create", "--subnet", "10.123.0.128/25", "overlap"], "overlaps"),
        (vec!["network", "create", "--subnet", "10.300.0.0/16", "bad"], "10.300.0.0/16"),
        (vec!["network", "create", "--subnet", "10.125.0.0/24", "--gateway", "10.126.0.1", "gw"], "10.126.0.1"),
        (vec!["network", "create", "fixed"], "fixed"),
        (vec!["network", "rm", "fixed"], "holder"),
    ] {
        let (code, _, err) = s.code(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?} names {needle:?}: {err}");
    }
    assert_eq!((s.ok(&["ps", "-aq"]), s.ok(&["network", "ls", "-q"]), network_state(&s)), before);
    s.ok(&["rm", "-f", "holder"]);
}

#[test]
fn build_run_steps_use_the_default_bridge_unless_told_otherwise() {
    let s = with_image();
    // A link only the test's namespace (the build's host) has.
    ip(&s, &["link", "add", "hostonly0", "type", "veth", "peer", "name", "hostonly1"]);
    s.ok(&["run", "--rm", "net:1", "true"]);
    let baseline = network_state(&s);
    let ctx = s.dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM net:1\n\
         RUN ip -o -4 addr show > /bridge.txt\n\
         RUN --network=none ip -o link show > /none.txt\n\
         RUN --network=host ip -o link show > /host.txt\n",
    )
    .unwrap();
    s.ok(&["build", "-q", "-t", "nets:1", ctx.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["network", "inspect", "bridge"])).unwrap();
    let subnet = v[0]["IPAM"]["Config"][0]["Subnet"].as_str().unwrap().to_string();
    let prefix = subnet.split('.').take(2).collect::<Vec<_>>().join(".");
    let cat = |f: &str| s.ok(&["run", "--rm", "--network", "none", "nets:1", "cat", f]);
    let bridge = cat("/bridge.txt");
    assert!(
        bridge.lines().any(|l| l.contains("eth0") && l.contains(&format!("inet {prefix}."))),
        "{bridge} in {subnet}"
    );
    let none = cat("/none.txt");
    assert_eq!(none.lines().count(), 1, "{none}");
    assert!(none.contains(": lo:"), "{none}");
    let host = cat("/host.txt");
    assert!(host.contains("hostonly0"), "{host}");
    // The whole build with --network none: no step gets an interface.
    std::fs::write(ctx.join("Dockerfile"), "FROM net:1\nRUN ip -o link show > /links.txt\n").unwrap();
    s.ok(&["build", "-q", "--network", "none", "-t", "sealed:1", ctx.to_str().unwrap()]);
    let links = s.ok(&["run", "--rm", "--network", "none", "sealed:1", "cat", "/links.txt"]);
    assert_eq!(links.lines().count(), 1, "{links}");
    // Nothing of the steps' networking is left.
    assert_eq!(network_state(&s), baseline);
}

#[test]
fn connect_and_disconnect_a_running_container_and_share_another_s_network() {
    let s = with_image();
    s.ok(&["network", "create", "late"]);
    s.ok(&["run", "-d", "--name", "web", "net:1", "httpd", "-f", "-p", "80", "-h", "/www"]);
    // Another container in web's namespace: web's server is on its loopback.
    let local = fetch("http://127.0.0.1/");
    let (code, out, err) = s.code(&["run", "--rm", "--network", "container:web", "net:1", "sh", "-c", &local]);
    assert_eq!((code, out.as_str()), (0, "hello from web\n"), "{err}");
    let web_by_name = fetch("http://web/");
    let by_name = ["run", "--rm", "--network", "late", "net:1", "sh", "-c", web_by_name.as_str()];
    assert_unreachable(&s, &by_name, "before connect");
    s.ok(&["network", "connect", "--alias", "site", "late", "web"]);
    let (code, out, err) = s.code(&by_name);
    assert_eq!((code, out.as_str()), (0, "hello from web\n"), "after connect: {err}");
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "web"])).unwrap();
    let nets = v[0]["NetworkSettings"]["Networks"].as_object().unwrap();
    assert_eq!(nets.keys().collect::<Vec<_>>(), ["bridge", "late"], "{v}");
    s.ok(&["network", "disconnect", "late", "web"]);
    assert_unreachable(&s, &by_name, "after disconnect");
    let (code, _, err) = s.code(&["network", "rm", "late"]);
    assert_eq!(code, 0, "no container is on it any more: {err}");
    s.ok(&["rm", "-f", "web"]);
}

#[test]
fn an_ipv6_network_gives_containers_addresses_that_reach_each_other() {
    let s = with_image();
    s.ok(&["network", "create", "--ipv6", "--subnet", "fd12:3456:789a::/64", "six"]);
    s.ok(&["run", "-d", "--name", "web6", "--network", "six", "net:1", "httpd", "-f", "-p", "80", "-h", "/www"]);
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "web6"])).unwrap();
    let net = &v[0]["NetworkSettings"]["Networks"]["six"];
    let addr = net["GlobalIPv6Address"].as_str().unwrap().to_string();
    assert_eq!((addr.as_str(), net["IPv6Gateway"].as_str()), ("fd12:3456:789a::2", Some("fd12:3456:789a::1")), "{v}");
    let url = format!("http://[{addr}]/");
    wait_for(&s, &url);
    let by_v6 = fetch(&url);
    let (code, out, err) = s.code(&["run", "--rm", "--network", "six", "net:1", "sh", "-c", &by_v6]);
    assert_eq!((code, out.as_str()), (0, "hello from web\n"), "{err}");
    let hosts = s.ok(&["run", "--rm", "--network", "six", "--hostname", "h6", "net:1", "cat", "/etc/hosts"]);
    assert!(hosts.lines().any(|l| l.starts_with("fd12:3456:789a::") && l.ends_with("\th6")), "{hosts}");
    for (args, needle) in [
        (vec!["network", "create", "--subnet", "fd00:1::/64", "nov6"], "--ipv6"),
        (vec!["network", "create", "--ipv6", "--subnet", "fd12:3456:789a::/80", "overlap6"], "overlaps"),
        (vec!["network", "create", "--subnet", "10.130.0.0/24", "--subnet", "10.131.0.0/24", "two"], "at most one"),
    ] {
        let (code, _, err) = s.code(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?} names {needle:?}: {err}");
    }
    s.ok(&["rm", "-f", "web6"]);
}
