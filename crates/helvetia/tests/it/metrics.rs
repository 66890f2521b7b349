//! Container metrics end to end: a container with a known load shows in the stored series
//! within stated bounds, the health summary and the live stream follow a redeploy, and the
//! Prometheus exposition parses strictly and carries the per-service series.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::process::Command;
use std::time::{Duration, Instant};

use helvetia_cli::client::Client;
use helvetia_cli::sse;
use helvetia_test_support::{FixtureRepo, TestServer, eventually, project_containers, unique};
use reqwest::Method;
use serde_json::{Value, json};

use crate::deploy::Cleanup;

/// What the `metrics-load` fixture holds: one string of this many bytes.
const ALLOCATION: f64 = 100_000_000.0;

/// The CPU time, in seconds, the `metrics-load` fixture's spinning `awk` in `container` has
/// used so far, as the kernel counts it for the process: not the engine's container
/// statistics the series are made of.
fn spinner_cpu_seconds(container: &str) -> f64 {
    let top = Command::new("/usr/bin/docker")
        .args(["top", container, "-eo", "pid,comm"])
        .output()
        .unwrap();
    let top = String::from_utf8_lossy(&top.stdout);
    let pid = top
        .lines()
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            let pid = fields.next()?;
            (fields.next()? == "awk").then_some(pid)
        })
        .unwrap_or_else(|| panic!("no awk in {container}: {top}"));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the parenthesised command name: the state (field 3), …, utime and stime (14, 15).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let per_second = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    let per_second: f64 = String::from_utf8_lossy(&per_second.stdout)
        .trim()
        .parse()
        .unwrap();
    ticks / per_second
}

/// The kernel's count of the spinner's CPU use, in percent of one core, at `when`.
async fn spinner_cpu_at(container: &str, when: jiff::Timestamp) -> (Instant, f64) {
    eventually(Duration::from_secs(60), "the window's edge", || async {
        (jiff::Timestamp::now() >= when).then_some(())
    })
    .await;
    (Instant::now(), spinner_cpu_seconds(container))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_known_load_shows_in_the_series_the_health_summary_and_prometheus() {
    let exposition_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let exposition = format!("127.0.0.1:{exposition_port}");
    let server = TestServer::start_with(
        crate::BINARY,
        &["--metrics-interval", "1s", "--metrics-listen", &exposition],
    )
    .await;
    let project = unique("metrics");
    let _cleanup = Cleanup(project.clone());
    let repo = FixtureRepo::new("metrics-load");
    server.service(&project, "web", &repo).await;
    let service = format!("/api/v1/projects/{project}/services/web");
    let (status, body) = server
        .api(
            Method::PATCH,
            &service,
            Some(json!({"runtime": {"limits": {"cpus": 0.5}}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let live = server.deploy(&project, "web").await;
    assert_eq!(live["status"], "live", "{live}");
    let deployment = live["id"].as_i64().unwrap();

    // The first sample appears within a few rounds; the 30 s window starts after the fixture
    // has made its allocation and the CPU quota has settled.
    let first: Value = eventually(Duration::from_secs(30), "a first sample", || async {
        let current = server.get(&format!("{service}/metrics/current")).await;
        current["containers"].as_array()?.first().cloned()
    })
    .await;
    let start: jiff::Timestamp = first["at"].as_str().unwrap().parse().unwrap();
    let start = start + jiff::SignedDuration::from_secs(3);
    let end = start + jiff::SignedDuration::from_secs(30);
    let window = format!("{service}/metrics?from={start}&to={end}&step=1s");
    let [container] = <[String; 1]>::try_from(project_containers(&project)).unwrap();
    let (opened, cpu_then) = spinner_cpu_at(&container, start).await;
    let (closed, cpu_now) = spinner_cpu_at(&container, end).await;
    let kernel = (cpu_now - cpu_then) / (closed - opened).as_secs_f64() * 100.0;
    let points: Vec<Value> = eventually(Duration::from_secs(60), "30 s of samples", || {
        let (server, window) = (&server, window.clone());
        async move {
            if jiff::Timestamp::now() < end + jiff::SignedDuration::from_secs(2) {
                return None;
            }
            let series = server.get(&window).await;
            assert_eq!(series["resolution"], "raw", "{series}");
            assert_eq!(series["step_seconds"], 1);
            Some(series["points"].as_array()?.clone())
        }
    })
    .await;
    assert!(points.len() >= 25, "only {} points in 30 s", points.len());
    let mean = |key: &str| {
        points.iter().map(|p| p[key].as_f64().unwrap()).sum::<f64>() / points.len() as f64
    };
    let cpu = mean("cpu_percent");
    let memory = mean("memory_bytes");
    eprintln!(
        "{} points in 30 s: CPU {cpu:.1} % of one core (the kernel counted {kernel:.1} %), memory {memory:.0} bytes",
        points.len()
    );
    // The spinner gets its half core only on an idle machine: on a busy one it gets less. What
    // the series must show is what the kernel counted, never more than the limit.
    assert!(
        cpu <= 60.0,
        "CPU averaged {cpu:.1} % of one core under a 0.5-CPU limit: {points:?}"
    );
    assert!(
        (cpu - kernel).abs() <= 5.0,
        "CPU averaged {cpu:.1} % of one core in the series, the kernel counted {kernel:.1} %: {points:?}"
    );
    assert!(
        (memory - ALLOCATION).abs() <= ALLOCATION * 0.1,
        "memory averaged {memory:.0} bytes for a {ALLOCATION} byte allocation"
    );
    assert!(
        points.iter().all(|p| p["containers"] == 1),
        "one container: {points:?}"
    );
    let of_limit = mean("cpu_limit_percent");
    assert!(
        (of_limit - cpu * 2.0).abs() < 1.0,
        "{of_limit:.1} % of the 0.5-CPU limit for {cpu:.1} % of one core"
    );
    let current = server.get(&format!("{service}/metrics/current")).await;
    assert_eq!(current["health"]["ok"], true, "{current}");
    assert_eq!(current["containers"][0]["deployment_id"], deployment);

    prometheus_exposition(&server, &project, deployment, exposition_port).await;

    // The CLI: current values, sparklines and the health summary; `--json` as the API has it.
    let output = server.cli(&["metrics", &format!("{project}/web"), "--since", "2m"]);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{printed}");
    assert!(printed.contains("helvetia-"), "{printed}");
    assert!(printed.contains("health: ok"), "{printed}");
    assert!(
        printed.chars().any(|c| ('▁'..='█').contains(&c)),
        "{printed}"
    );
    let output = server.cli(&["metrics", &format!("{project}/web"), "--json"]);
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        printed["current"]["containers"].as_array().unwrap().len(),
        1
    );
    assert!(!printed["series"]["points"].as_array().unwrap().is_empty());

    // A memory limit just above what the fixture holds: a redeploy replaces the container,
    // the collector picks the new one up, and the summary reports it near its limit.
    let follower = tokio::spawn(first_sample_of_deployment(
        Client::new(&server.url(), &server.token).unwrap(),
        format!("{service}/metrics/stream"),
    ));
    let (status, body) = server
        .api(
            Method::PATCH,
            &service,
            Some(json!({"runtime": {"limits": {"memory_bytes": 106 << 20}}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let redeployed = eventually(Duration::from_secs(120), "the redeploy", || async {
        let list = server.get(&format!("{service}/deployments")).await;
        let newest = list.as_array()?.first()?.clone();
        (newest["id"] != deployment && newest["status"] == "live").then_some(newest)
    })
    .await;
    let new_id = redeployed["id"].as_i64().unwrap();
    let current = eventually(
        Duration::from_secs(60),
        "the new container near its memory limit",
        || async {
            let current = server.get(&format!("{service}/metrics/current")).await;
            let containers = current["containers"].as_array()?;
            let only_new = containers.len() == 1 && containers[0]["deployment_id"] == new_id;
            (only_new && current["health"]["ok"] == false).then_some(current)
        },
    )
    .await;
    let near = current["health"]["memory_near_limit"].as_array().unwrap();
    assert_eq!(near.len(), 1, "{current}");
    assert!(
        near[0].as_str().unwrap().contains(&format!("-{new_id}-")),
        "{current}"
    );
    // A live chart sees the new deployment's samples without reconnecting.
    let streamed = tokio::time::timeout(Duration::from_secs(60), follower)
        .await
        .expect("the stream carried the new deployment's samples")
        .unwrap();
    assert_eq!(streamed["deployment_id"], new_id);
    assert!(streamed["memory_bytes"].as_f64().unwrap() > ALLOCATION * 0.9);
}

/// Follows the metrics stream until a sample of a deployment other than the first one seen.
async fn first_sample_of_deployment(client: Client, path: String) -> Value {
    let mut first_deployment = None;
    let mut found = None;
    sse::follow(&client, &path, |event| {
        assert_eq!(event.event, "sample");
        let sample: Value = serde_json::from_str(&event.data).unwrap();
        let deployment = sample["deployment_id"].as_i64().unwrap();
        if *first_deployment.get_or_insert(deployment) == deployment {
            return ControlFlow::Continue(());
        }
        found = Some(sample);
        ControlFlow::Break(())
    })
    .await
    .unwrap();
    found.unwrap()
}

/// Checks `/metrics` on the API (an instance administrator's `admin` token, none refused) and
/// on the tokenless loopback
/// listener: both parse as the text format and carry the service's container series.
async fn prometheus_exposition(server: &TestServer, project: &str, deployment: i64, port: u16) {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let refused = http
        .get(format!("{}/metrics", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let (status, token) = server
        .api(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "prometheus", "scopes": ["admin"]})),
        )
        .await;
    assert_eq!(status, 201, "{token}");
    let response = http
        .get(format!("{}/metrics", server.url()))
        .bearer_auth(token["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    let families = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));

    let labels = [
        ("project", project.to_owned()),
        ("service", "web".to_owned()),
        ("deployment", deployment.to_string()),
    ];
    for name in [
        "helvetia_container_cpu_percent",
        "helvetia_container_cpu_limit_percent",
        "helvetia_container_memory_bytes",
        "helvetia_container_memory_limit_bytes",
        "helvetia_container_network_receive_bytes_per_second",
        "helvetia_container_network_transmit_bytes_per_second",
        "helvetia_container_block_read_bytes_per_second",
        "helvetia_container_block_write_bytes_per_second",
        "helvetia_container_pids",
        "helvetia_container_restarts",
    ] {
        let family = &families[name];
        assert_eq!(family.kind, "gauge", "{name}");
        let series = family
            .samples
            .iter()
            .find(|s| labels.iter().all(|(k, v)| s.labels.get(*k) == Some(v)))
            .unwrap_or_else(|| panic!("no {name} series for the service:\n{text}"));
        assert_eq!(
            series.labels["container"],
            server
                .scope()
                .await
                .container(project, "web", deployment, 0)
        );
        if name == "helvetia_container_memory_bytes" {
            assert!(
                (series.value - ALLOCATION).abs() <= ALLOCATION * 0.1,
                "{series:?}"
            );
        }
    }
    let value = |name: &str, label: (&str, &str)| {
        families[name]
            .samples
            .iter()
            .find(|s| s.labels.get(label.0).map(String::as_str) == Some(label.1))
            .unwrap_or_else(|| panic!("no {name}{{{}={}}}:\n{text}", label.0, label.1))
            .value
    };
    assert!(value("helvetia_deployments", ("status", "live")) >= 1.0);
    assert_eq!(families["helvetia_queued_jobs"].kind, "gauge");
    assert_eq!(families["helvetia_sse_clients"].kind, "gauge");
    assert_eq!(
        families["helvetia_deploy_duration_seconds"].kind,
        "histogram"
    );
    assert!(
        value("helvetia_deploy_duration_seconds", ("status", "live")) >= 0.0,
        "a count, a sum or a bucket of the live deploy"
    );
    assert_eq!(
        families["helvetia_build_duration_seconds"].kind,
        "histogram"
    );
    let latency = &families["helvetia_http_request_duration_seconds"];
    assert_eq!(latency.kind, "histogram");
    assert!(latency.samples.iter().any(|s| {
        s.name.ends_with("_count")
            && s.labels.get("route").map(String::as_str)
                == Some("/api/v1/projects/{project}/services/{service}/metrics/current")
    }));

    // The loopback listener serves the same without a token.
    let plain = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    let families = parse_exposition(&plain.text().await.unwrap()).unwrap();
    assert!(families.contains_key("helvetia_container_cpu_percent"));
}

#[derive(Debug)]
struct Family {
    kind: String,
    samples: Vec<Sample>,
}

#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A strict reader of the Prometheus text format (version 0.0.4): every line is a comment
/// (`# HELP`, `# TYPE`, or other), blank, or a sample `name{label="value",…} value
/// [timestamp]`; names and label names must be valid, label values properly escaped, values
/// numbers; a family's `# TYPE` comes once, before its samples, and histogram and summary
/// samples carry their suffixes. Returns the families by name.
fn parse_exposition(text: &str) -> Result<HashMap<String, Family>, String> {
    let mut families: HashMap<String, Family> = HashMap::new();
    let mut current: Option<String> = None;
    for (number, line) in text.lines().enumerate() {
        let fail = |why: &str| Err(format!("line {}: {why}: {line:?}", number + 1));
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.trim_start().splitn(3, ' ').collect();
            match words.as_slice() {
                ["TYPE", name, kind] => {
                    if !valid_name(name, true) {
                        return fail("invalid metric name");
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(kind) {
                        return fail("unknown type");
                    }
                    if families.contains_key(*name) {
                        return fail("second TYPE of a family");
                    }
                    families.insert(
                        (*name).to_owned(),
                        Family {
                            kind: (*kind).to_owned(),
                            samples: vec![],
                        },
                    );
                    current = Some((*name).to_owned());
                }
                ["TYPE", ..] => return fail("malformed TYPE"),
                ["HELP", name, ..] if !valid_name(name, true) => return fail("invalid HELP"),
                _ => {}
            }
            continue;
        }
        let (name, rest) = match line.find(['{', ' ']) {
            Some(at) => line.split_at(at),
            None => return fail("a sample without a value"),
        };
        if !valid_name(name, true) {
            return fail("invalid metric name");
        }
        let mut labels = BTreeMap::new();
        let rest = if let Some(inside) = rest.strip_prefix('{') {
            let mut chars = inside.char_indices().peekable();
            let end = loop {
                while chars.peek().is_some_and(|(_, c)| *c == ',' || *c == ' ') {
                    chars.next();
                }
                let Some(&(start, c)) = chars.peek() else {
                    return fail("unterminated labels");
                };
                if c == '}' {
                    break start + 1;
                }
                let mut label = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c == '=' {
                        break;
                    }
                    label.push(c);
                    chars.next();
                }
                if !valid_name(&label, false) || chars.next().map(|(_, c)| c) != Some('=') {
                    return fail("invalid label name");
                }
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return fail("unquoted label value");
                }
                let mut value = String::new();
                loop {
                    match chars.next().map(|(_, c)| c) {
                        Some('"') => break,
                        Some('\\') => match chars.next().map(|(_, c)| c) {
                            Some('\\') => value.push('\\'),
                            Some('"') => value.push('"'),
                            Some('n') => value.push('\n'),
                            _ => return fail("invalid escape in a label value"),
                        },
                        Some('\n') | None => return fail("unterminated label value"),
                        Some(c) => value.push(c),
                    }
                }
                if labels.insert(label, value).is_some() {
                    return fail("a label twice");
                }
                match chars.peek().map(|(_, c)| *c) {
                    Some(',') | Some('}') => {}
                    _ => return fail("labels must be separated by commas"),
                }
            };
            &inside[end..]
        } else {
            rest
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let value = match fields.as_slice() {
            [value] | [value, _] => value,
            _ => return fail("expected a value and an optional timestamp"),
        };
        let value: f64 = match *value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            number => match number.parse() {
                Ok(number) => number,
                Err(_) => return fail("the value is not a number"),
            },
        };
        if let [_, timestamp] = fields.as_slice()
            && timestamp.parse::<i64>().is_err()
        {
            return fail("the timestamp is not an integer");
        }
        let Some(family_name) = current.clone() else {
            return fail("a sample before any TYPE");
        };
        let family = families.get_mut(&family_name).unwrap();
        let suffixes: &[&str] = match family.kind.as_str() {
            "histogram" => &["_bucket", "_sum", "_count"],
            "summary" => &["", "_sum", "_count"],
            _ => &[""],
        };
        if !suffixes
            .iter()
            .any(|suffix| name.strip_suffix(suffix) == Some(family_name.as_str()))
        {
            return fail("a sample outside its family");
        }
        if family.kind == "histogram" && name.ends_with("_bucket") && !labels.contains_key("le") {
            return fail("a bucket without `le`");
        }
        family.samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    Ok(families)
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*` for metric names; label names allow no `:`.
fn valid_name(name: &str, colons: bool) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':');
    name.chars()
        .next()
        .is_some_and(|c| allowed(c) && !c.is_ascii_digit())
        && name.chars().all(allowed)
}

#[test]
fn the_exposition_reader_is_strict() {
    let good = "# HELP up Whether it is up.\n# TYPE up gauge\nup{job=\"a\\\"b\",x=\"1\"} 1\n\
                # TYPE lat histogram\nlat_bucket{le=\"0.5\"} 2\nlat_bucket{le=\"+Inf\"} 3\n\
                lat_sum 1.5\nlat_count 3 1700000000000\n";
    let families = parse_exposition(good).unwrap();
    assert_eq!(families["up"].samples[0].labels["job"], "a\"b");
    assert_eq!(families["lat"].samples.len(), 4);
    for bad in [
        "up 1\n",
        "# TYPE up gauge\nup{job=\"a} 1\n",
        "# TYPE up gauge\nup{job=a} 1\n",
        "# TYPE up gauge\nup one\n",
        "# TYPE up gauge\n# TYPE up gauge\n",
        "# TYPE up gauge\ndown 1\n",
        "# TYPE 1up gauge\n",
        "# TYPE lat histogram\nlat_bucket 1\n",
        "# TYPE up gauge\nup{a=\"1\"b=\"2\"} 1\n",
    ] {
        assert!(parse_exposition(bad).is_err(), "{bad:?}");
    }
}
