//! Who may call what on a coordinator served with TLS: each caller's
//! identity comes from its client certificate ([`crate::rpc::caller`]).
//!
//! | calls | who |
//! |---|---|
//! | `register`, `heartbeat`, `request_slot`, `report` | a node, as the node id in its certificate |
//! | `publish`, `control`, `forget` | an operator |
//! | `status`, `history` | an operator or a reader |
//!
//! A node cannot act as another (its certificate names one id), nor
//! publish; a reader changes nothing; a caller without an upshift identity
//! does nothing at all. A refused call is logged, and recorded in the
//! history at most once a minute per caller.

use std::sync::Arc;

use super::Coordinator;
use crate::rpc::{Guard, Identity, Role};
use crate::upgrade::api::{v1, v2, v3, v4, v5, v6};

/// What a call does, for the rules above.
enum Act<'a> {
    /// A node acting as `id`.
    AsNode(&'a str, &'static str),
    /// Changing rollouts.
    Steer(&'static str),
    /// Looking.
    Read,
}

/// The guard a coordinator served with TLS answers every call through;
/// refusals are recorded in `coordinator`'s history.
pub(super) fn guard(coordinator: Arc<Coordinator>) -> Guard {
    Arc::new(move |caller, version, method, payload| {
        let Some(caller) = caller else {
            return Err(
                "this coordinator answers only callers with a certificate that names an \
                        upshift identity (upshift://ROLE/NAME)"
                    .into(),
            );
        };
        // A request that does not decode is refused too: nothing runs.
        let act = match version {
            1 => v1::Request::decode(method, payload).map(|r| owned(v1_act(&r))),
            2 => v2::Request::decode(method, payload).map(|r| owned(v2_act(&r))),
            3 => v3::Request::decode(method, payload).map(|r| owned(v3_act(&r))),
            4 => v4::Request::decode(method, payload).map(|r| owned(v4_act(&r))),
            5 => v5::Request::decode(method, payload).map(|r| owned(v5_act(&r))),
            6 => v6::Request::decode(method, payload).map(|r| owned(v6_act(&r))),
            // A version the coordinator does not serve runs nothing: the
            // dispatcher refuses it after the guard.
            _ => return Ok(()),
        };
        match act {
            Ok(act) => {
                allowed(caller, act).inspect_err(|why| coordinator.refused(Some(caller), why))
            }
            // The dispatcher says why the call is malformed.
            Err(_) => Ok(()),
        }
    })
}

/// An act with its node id owned, so the request can be dropped.
enum Owned {
    AsNode(String, &'static str),
    Steer(&'static str),
    Read,
}

fn owned(act: Act<'_>) -> Owned {
    match act {
        Act::AsNode(id, what) => Owned::AsNode(id.to_string(), what),
        Act::Steer(what) => Owned::Steer(what),
        Act::Read => Owned::Read,
    }
}

fn v1_act(request: &v1::Request) -> Act<'_> {
    match request {
        v1::Request::Register { node } => Act::AsNode(&node.id, "register"),
        v1::Request::Heartbeat { beat } => Act::AsNode(&beat.id, "report a heartbeat"),
        v1::Request::RequestSlot { node, .. } => Act::AsNode(node, "ask for an upgrade slot"),
        v1::Request::Report { node, .. } => Act::AsNode(node, "report an upgrade"),
        v1::Request::Publish { .. } => Act::Steer("publish an upgrade"),
        v1::Request::Control { .. } => Act::Steer("pause, resume or abort a rollout"),
        v1::Request::Status {} => Act::Read,
    }
}

fn v2_act(request: &v2::Request) -> Act<'_> {
    match request {
        v2::Request::Register { node } => Act::AsNode(&node.id, "register"),
        v2::Request::Heartbeat { beat } => Act::AsNode(&beat.id, "report a heartbeat"),
        v2::Request::RequestSlot { node, .. } => Act::AsNode(node, "ask for an upgrade slot"),
        v2::Request::Report { node, .. } => Act::AsNode(node, "report an upgrade"),
        v2::Request::Publish { .. } => Act::Steer("publish an upgrade"),
        v2::Request::Control { .. } => Act::Steer("pause, resume or abort a rollout"),
        v2::Request::Status {} | v2::Request::History { .. } => Act::Read,
    }
}

fn v3_act(request: &v3::Request) -> Act<'_> {
    match request {
        v3::Request::Register { node } => Act::AsNode(&node.id, "register"),
        v3::Request::Heartbeat { beat } => Act::AsNode(&beat.id, "report a heartbeat"),
        v3::Request::RequestSlot { node, .. } => Act::AsNode(node, "ask for an upgrade slot"),
        v3::Request::Report { node, .. } => Act::AsNode(node, "report an upgrade"),
        v3::Request::Publish { .. } => Act::Steer("publish an upgrade"),
        v3::Request::Control { .. } => Act::Steer("pause, resume or abort a rollout"),
        v3::Request::Forget { .. } => Act::Steer("forget a node"),
        v3::Request::Status {} | v3::Request::History { .. } => Act::Read,
    }
}

fn v4_act(request: &v4::Request) -> Act<'_> {
    match request {
        v4::Request::Register { node } => Act::AsNode(&node.id, "register"),
        v4::Request::Heartbeat { beat } => Act::AsNode(&beat.id, "report a heartbeat"),
        v4::Request::RequestSlot { node, .. } => Act::AsNode(node, "ask for an upgrade slot"),
        v4::Request::Report { node, .. } => Act::AsNode(node, "report an upgrade"),
        v4::Request::Publish { .. } | v4::Request::PublishGated { .. } => {
            Act::Steer("publish an upgrade")
        }
        v4::Request::Approve { .. } => Act::Steer("approve a rollout"),
        v4::Request::Control { .. } => Act::Steer("pause, resume or abort a rollout"),
        v4::Request::Forget { .. } => Act::Steer("forget a node"),
        v4::Request::Status {} | v4::Request::History { .. } | v4::Request::Gates {} => Act::Read,
    }
}

/// The acts of v5 and of v6, whose requests have the same names (v6 has
/// one more).
macro_rules! rollback_era_act {
    ($v:ident, $name:ident $(, $more:pat => $act:expr)*) => {
        fn $name(request: &$v::Request) -> Act<'_> {
            match request {
                $($more => $act,)*
                $v::Request::Register { node } => Act::AsNode(&node.id, "register"),
                $v::Request::Heartbeat { beat } => Act::AsNode(&beat.id, "report a heartbeat"),
                $v::Request::RequestSlot { node, .. } => {
                    Act::AsNode(node, "ask for an upgrade slot")
                }
                $v::Request::Report { node, .. } => Act::AsNode(node, "report an upgrade"),
                $v::Request::Publish { .. } | $v::Request::PublishGated { .. } => {
                    Act::Steer("publish an upgrade")
                }
                $v::Request::Rollback { .. } => Act::Steer("roll back an upgrade"),
                $v::Request::Approve { .. } => Act::Steer("approve a rollout"),
                $v::Request::Control { .. } => Act::Steer("pause, resume or abort a rollout"),
                $v::Request::Forget { .. } => Act::Steer("forget a node"),
                $v::Request::Status {} | $v::Request::History { .. } | $v::Request::Gates {} => {
                    Act::Read
                }
            }
        }
    };
}

rollback_era_act!(v5, v5_act);
rollback_era_act!(v6, v6_act, v6::Request::WaitSlot { node, .. } => Act::AsNode(node, "ask for an upgrade slot"));

fn allowed(caller: &Identity, act: Owned) -> Result<(), String> {
    match (caller.role, act) {
        (Role::Node, Owned::AsNode(id, _)) if caller.name == id => Ok(()),
        (Role::Node, Owned::AsNode(id, what)) => Err(format!(
            "node {} may not {what} as node {id}: a node acts only as the id in its certificate",
            caller.name
        )),
        (_, Owned::AsNode(_, what)) => Err(format!(
            "{caller} may not {what}: only a node does, with a certificate naming it"
        )),
        (Role::Operator, Owned::Steer(_)) => Ok(()),
        (_, Owned::Steer(what)) => Err(format!(
            "{caller} may not {what}: that needs an operator's certificate"
        )),
        (Role::Operator | Role::Reader, Owned::Read) => Ok(()),
        (_, Owned::Read) => Err(format!(
            "{caller} may not read the coordinator's status: that needs an operator's or a \
             reader's certificate"
        )),
    }
}
