//! Bounded waits for what the cluster does: a Job ending, a Deployment's pods Ready, a pod
//! appearing. Every wait has a deadline and says what it saw last; a pod in a state it cannot
//! leave (image missing, crash-looping init container) ends the wait at once with its message.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::TestNs;

/// Polls `f` every 200 ms until it returns `Ok`, for at most `timeout`; then panics with
/// `what` and the last `Err` (the state seen). `f` may panic itself to fail fast.
pub fn deadline_loop<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) => {
                assert!(
                    Instant::now() < deadline,
                    "{what}: not done after {timeout:?}; last seen: {last}"
                );
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// How a Job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
    /// Condition Complete.
    Complete,
    /// Condition Failed, with its reason and message.
    Failed(String),
}

/// Why a pod can never become Ready by itself, if it cannot.
pub fn hopeless(pod: &Value) -> Option<String> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let statuses = pod["status"]["initContainerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| (true, s))
        .chain(
            pod["status"]["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| (false, s)),
        );
    for (init, s) in statuses {
        let c = s["name"].as_str().unwrap_or_default();
        let waiting = s["state"]["waiting"]["reason"].as_str().unwrap_or_default();
        if [
            "ErrImagePull",
            "ImagePullBackOff",
            "ErrImageNeverPull",
            "InvalidImageName",
            "CreateContainerConfigError",
            "CreateContainerError",
            "RunContainerError",
        ]
        .contains(&waiting)
        {
            return Some(format!(
                "pod {name} container {c}: {waiting}: {}",
                s["state"]["waiting"]["message"]
            ));
        }
        for term in [&s["state"]["terminated"], &s["lastState"]["terminated"]] {
            let code = term["exitCode"].as_i64().unwrap_or(0);
            if init && code != 0 {
                return Some(format!(
                    "pod {name} init container {c} exited {code}: {}",
                    term["message"].as_str().unwrap_or_default().trim()
                ));
            }
        }
    }
    None
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

impl TestNs {
    /// Waits for Job `name` to end (Complete or Failed); returns how and when.
    pub fn wait_job(&self, name: &str, timeout: Duration) -> (JobEnd, Duration) {
        let t = Instant::now();
        let end = deadline_loop(&format!("Job {name}"), timeout, || {
            let job = self
                .get(&["job", name])
                .ok_or_else(|| "not created yet".to_string())?;
            for c in job["status"]["conditions"].as_array().into_iter().flatten() {
                if c["status"] != "True" {
                    continue;
                }
                if c["type"] == "Complete" {
                    return Ok(JobEnd::Complete);
                }
                if c["type"] == "Failed" {
                    return Ok(JobEnd::Failed(format!("{}: {}", c["reason"], c["message"])));
                }
            }
            Err(format!("status {}", job["status"]))
        });
        (end, t.elapsed())
    }

    /// Waits until `replicas` pods matching `selector` are Ready and none is terminating;
    /// fails at once when one of them cannot become Ready. Returns the time it took.
    pub fn wait_ready(&self, selector: &str, replicas: usize, timeout: Duration) -> Duration {
        let t = Instant::now();
        deadline_loop(
            &format!("{replicas} Ready pods with {selector}"),
            timeout,
            || {
                let pods = self.pods(selector);
                if let Some(why) = pods.iter().find_map(hopeless) {
                    panic!("a pod with {selector} cannot become Ready: {why}");
                }
                let live: Vec<&Value> = pods
                    .iter()
                    .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                    .collect();
                let n = live.iter().filter(|p| ready(p)).count();
                if n == replicas && live.len() == replicas {
                    Ok(())
                } else {
                    Err(format!("{n} of {} Ready", live.len()))
                }
            },
        );
        t.elapsed()
    }

    /// Per-pod create → Ready seconds of pods matching `selector`, from the apiserver's
    /// timestamps (second resolution).
    pub fn ready_seconds(&self, selector: &str) -> Vec<i64> {
        let mut v: Vec<i64> = self
            .pods(selector)
            .iter()
            .filter_map(|p| {
                let created = parse_time(p["metadata"]["creationTimestamp"].as_str()?)?;
                let ready = p["status"]["conditions"]
                    .as_array()?
                    .iter()
                    .find(|c| c["type"] == "Ready" && c["status"] == "True")?;
                Some(parse_time(ready["lastTransitionTime"].as_str()?)? - created)
            })
            .collect();
        v.sort();
        v
    }

    /// Waits for a pod matching `selector` that satisfies `pred`; returns it.
    pub fn wait_pod(
        &self,
        what: &str,
        selector: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        deadline_loop(what, timeout, || {
            let pods = self.pods(selector);
            pods.iter().find(|p| pred(p)).cloned().ok_or_else(|| {
                let phases: Vec<String> = pods
                    .iter()
                    .map(|p| format!("{}={}", p["metadata"]["name"], p["status"]["phase"]))
                    .collect();
                format!("pods: {phases:?}")
            })
        })
    }
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp as the apiserver writes them
/// (`2026-01-02T03:04:05Z`).
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (h, mi, se) = (n(11..13)?, n(14..16)?, n(17..19)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

/// Seconds since the epoch, with the fraction, of an RFC 3339 timestamp such as Helm writes
/// (`2026-01-02T03:04:05.123456789Z` or with a `+01:00` offset).
pub fn parse_time_precise(s: &str) -> Option<f64> {
    let whole = parse_time(&format!("{}Z", s.get(0..19)?))? as f64;
    let rest = s.get(19..)?;
    let (frac, zone) = match rest.strip_prefix('.') {
        Some(r) => {
            let n = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            (format!("0.{}", &r[..n]).parse::<f64>().ok()?, &r[n..])
        }
        None => (0.0, rest),
    };
    let offset = match zone {
        "Z" | "" => 0.0,
        z => {
            let sign = if z.starts_with('-') { -1.0 } else { 1.0 };
            let h: f64 = z.get(1..3)?.parse().ok()?;
            let m: f64 = z.get(4..6)?.parse().ok()?;
            sign * (h * 3600.0 + m * 60.0)
        }
    };
    Some(whole + frac - offset)
}
