//! The built-in schedules, one function each; `Registry::decide` combines them.

use super::{Decision, Rollout};
use crate::upgrade::NodeRecord;

/// At most `max_parallel` nodes of the asking node's group upgrade at once.
pub(super) fn rolling(max_parallel: u32, node: &NodeRecord, rollout: &Rollout<'_>) -> Decision {
    let busy = rollout
        .upgrading()
        .filter(|n| n.info.group == node.info.group)
        .count();
    if busy < max_parallel as usize {
        Decision::Go
    } else {
        Decision::Wait(format!(
            "{busy} of {max_parallel} slots of group {:?} are in use",
            node.info.group
        ))
    }
}

/// `count` nodes first; the rest once the last of them soaked for `soak_secs`.
pub(super) fn canary(count: u32, soak_secs: u64, rollout: &Rollout<'_>) -> Decision {
    let started = rollout.upgraded().count() + rollout.upgrading().count();
    if started < count as usize {
        return Decision::Go;
    }
    let upgraded: Vec<_> = rollout.upgraded().collect();
    if upgraded.len() < count as usize {
        return Decision::Wait(format!("waiting for {count} canaries to finish"));
    }
    let last = upgraded
        .iter()
        .filter_map(|n| n.upgraded_at_ms)
        .max()
        .unwrap_or(0);
    let soaked = rollout.now_ms.saturating_sub(last) / 1000;
    if soaked >= soak_secs {
        Decision::Go
    } else {
        Decision::Wait(format!("canaries soaking: {soaked} of {soak_secs} s"))
    }
}

/// A node waits until every node of the groups before its own has upgraded.
pub(super) fn group_order(groups: &[String], node: &NodeRecord, rollout: &Rollout<'_>) -> Decision {
    let def = &rollout.upgrade.def;
    let rank = |g: &str| groups.iter().position(|x| x == g).unwrap_or(groups.len());
    let mine = rank(&node.info.group);
    let behind = rollout
        .nodes
        .iter()
        .filter(|n| rank(&n.info.group) < mine && !def.reached(n.info.version))
        .count();
    if behind == 0 {
        Decision::Go
    } else {
        Decision::Wait(format!(
            "{behind} nodes of groups before {:?} have not upgraded yet",
            node.info.group
        ))
    }
}

/// Only between these minutes of the day (UTC); `from > to` wraps midnight.
pub(super) fn window(from_minute: u32, to_minute: u32, rollout: &Rollout<'_>) -> Decision {
    let minute = ((rollout.now_ms / 60_000) % 1440) as u32;
    let open = if from_minute <= to_minute {
        (from_minute..to_minute).contains(&minute)
    } else {
        minute >= from_minute || minute < to_minute
    };
    if open {
        Decision::Go
    } else {
        Decision::Wait(format!(
            "outside the window {from_minute}..{to_minute} (minute {minute} UTC)"
        ))
    }
}

/// Each upgraded node must be healthy for `healthy_secs` before the next
/// goes; an unhealthy upgraded node halts the rollout, and one not heard
/// from lately (it may have died after reporting healthy) holds it.
pub(super) fn health_gate(healthy_secs: u64, rollout: &Rollout<'_>) -> Decision {
    for n in rollout.upgraded() {
        let silent = rollout.now_ms.saturating_sub(n.last_seen_ms);
        if silent > rollout.heard_within_ms {
            return Decision::Wait(format!(
                "node {} has not been heard from for {} s; its health is not known",
                n.info.id,
                silent / 1000
            ));
        }
        if !n.healthy {
            return Decision::Halt(format!(
                "node {} failed its health check after upgrading",
                n.info.id
            ));
        }
        let since = n
            .healthy_since_ms
            .unwrap_or(rollout.now_ms)
            .max(n.upgraded_at_ms.unwrap_or(0));
        let healthy_for = rollout.now_ms.saturating_sub(since) / 1000;
        if healthy_for < healthy_secs {
            return Decision::Wait(format!(
                "node {} healthy for {healthy_for} of {healthy_secs} s",
                n.info.id
            ));
        }
    }
    if rollout.upgrading().next().is_some() {
        return Decision::Wait("a node is upgrading; its health is not known yet".into());
    }
    Decision::Go
}
