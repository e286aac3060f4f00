//! The seed's monitoring table, evaluated on one status reading (DESIGN §7): critical — all
//! gatherers down, production unreachable, deduplicator sync stalled > 5 min; warning — a
//! gatherer down, disk > 80 %. (Duration conditions such as "unreachable > 1 min" need
//! history; a single reading reports the condition itself, and the Prometheus rules under
//! `deploy/` add the `for:` clause.)

use super::model::{Alert, StatusReport};

pub const DISK_ALERT_PCT: u64 = 80;
pub const STALL_SECS: f64 = 300.0;

pub fn evaluate(r: &StatusReport) -> Vec<Alert> {
    let mut alerts = Vec::new();
    let down: Vec<&str> = r
        .gatherers
        .iter()
        .filter(|g| !g.healthy)
        .map(|g| g.id.as_str())
        .collect();
    if !r.gatherers.is_empty() && down.len() == r.gatherers.len() {
        alerts.push(Alert {
            severity: "critical",
            name: "AllGatherersDown",
            detail: format!("none of {} gatherers is collecting", r.gatherers.len()),
        });
    }
    let prod_down = r.production.as_ref().is_some_and(|p| !p.reachable)
        || r.dedup
            .as_ref()
            .is_some_and(|d| d.production_connected == Some(false));
    if prod_down {
        alerts.push(Alert {
            severity: "critical",
            name: "ProductionUnreachable",
            detail: r
                .production
                .as_ref()
                .and_then(|p| p.error.clone())
                .unwrap_or_else(|| "the deduplicator reports no production connection".into()),
        });
    }
    if let Some(d) = &r.dedup {
        let worst = d.lag.iter().map(|l| l.seconds).fold(0.0_f64, f64::max);
        if !d.up {
            alerts.push(Alert {
                severity: "critical",
                name: "DedupSyncStalled",
                detail: "the deduplicator does not answer".into(),
            });
        } else if worst > STALL_SECS {
            alerts.push(Alert {
                severity: "critical",
                name: "DedupSyncStalled",
                detail: format!("sync lag {worst:.0} s > {STALL_SECS:.0} s"),
            });
        }
    }
    if !down.is_empty() && down.len() < r.gatherers.len() {
        alerts.push(Alert {
            severity: "warning",
            name: "GathererDown",
            detail: down.join(", "),
        });
    }
    if let Some(n) = r
        .production
        .as_ref()
        .and_then(|p| p.rows.iter().find(|(t, _)| t == "quarantine"))
        .map(|(_, n)| *n)
        .filter(|n| *n > 0)
    {
        alerts.push(Alert {
            severity: "warning",
            name: "RowsQuarantined",
            detail: format!(
                "{n} rows in production table `quarantine` (refused or unreadable; see docs/runbook.md)"
            ),
        });
    }
    for g in &r.gatherers {
        if let Some(pct) = g.disk_used_pct.filter(|p| *p > DISK_ALERT_PCT) {
            alerts.push(Alert {
                severity: "warning",
                name: "DiskUsageHigh",
                detail: format!("{}: {pct} % of its filesystem used", g.id),
            });
        }
    }
    alerts
}

#[cfg(test)]
mod tests {
    use super::super::model::{GathererStatus, ServiceStatus};
    use super::*;

    fn g(id: &str, healthy: bool) -> GathererStatus {
        GathererStatus {
            id: id.into(),
            healthy,
            ..GathererStatus::default()
        }
    }

    #[test]
    fn one_down_warns_all_down_is_critical() {
        let mut r = StatusReport {
            gatherers: vec![g("a", true), g("b", false)],
            ..StatusReport::default()
        };
        let names: Vec<_> = evaluate(&r).iter().map(|a| a.name).collect();
        assert_eq!(names, vec!["GathererDown"]);
        r.gatherers = vec![g("a", false), g("b", false)];
        let names: Vec<_> = evaluate(&r).iter().map(|a| a.name).collect();
        assert_eq!(names, vec!["AllGatherersDown"]);
    }

    #[test]
    fn stalled_dedup_and_full_disk_fire() {
        let mut a = g("a", true);
        a.disk_used_pct = Some(91);
        let r = StatusReport {
            gatherers: vec![a],
            dedup: Some(ServiceStatus {
                up: true,
                lag: vec![super::super::model::Lag {
                    gatherer: None,
                    table: None,
                    seconds: 400.0,
                }],
                production_connected: Some(false),
                ..ServiceStatus::default()
            }),
            ..StatusReport::default()
        };
        let names: Vec<_> = evaluate(&r).iter().map(|a| a.name).collect();
        assert_eq!(
            names,
            vec!["ProductionUnreachable", "DedupSyncStalled", "DiskUsageHigh"]
        );
    }
}
