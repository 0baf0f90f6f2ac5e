//! The Subscription state machine, explicit and pure (Subscriptions R5
//! Backport IG 1.1.0, "Subscription status"; R4 `Subscription.status`).
//!
//! [`transition`] says where an [`Event`] moves a subscription in a
//! [`Status`], or refuses. `None` means the subscription no longer exists.
//!
//! | from \ event | HandshakeOk | HandshakeFailed | Delivered | DeliveryFailed | Update(requested/active) | Update(off) | Delete |
//! |--------------|-------------|-----------------|-----------|----------------|--------------------------|-------------|--------|
//! | requested    | active      | error           | refused   | refused        | requested                | off         | gone   |
//! | active       | refused     | refused         | active    | error          | requested                | off         | gone   |
//! | error        | refused     | refused         | refused   | refused        | requested                | off         | gone   |
//! | off          | refused     | refused         | refused   | refused        | requested                | off         | gone   |
//!
//! A new subscription starts `requested` (or `off` when asked; [`initial`]).
//! An update asking for `requested` or `active` always goes through
//! `requested` and a new handshake (the endpoint or headers may have
//! changed); only the handshake makes a subscription `active`. Only an
//! `active` subscription is sent event notifications. `error` is set by the
//! server alone (a failed handshake, or event delivery failing after its
//! retries); clients leave it by updating.

/// `Subscription.status` (R4 `subscription-status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Created or updated; the handshake has not succeeded yet.
    Requested,
    /// Handshake done: events are delivered.
    Active,
    /// The endpoint failed; nothing is delivered until the client updates.
    Error,
    /// Turned off by its owner.
    Off,
}

impl Status {
    /// The code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Active => "active",
            Self::Error => "error",
            Self::Off => "off",
        }
    }

    /// Parses a code.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Requested, Self::Active, Self::Error, Self::Off]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// What can happen to a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The handshake notification was answered with 2xx.
    HandshakeOk,
    /// The handshake failed (no answer, timeout, non-2xx).
    HandshakeFailed,
    /// An event notification was delivered.
    Delivered,
    /// An event notification failed after every retry.
    DeliveryFailed,
    /// The owner updated the subscription asking for this status
    /// (`requested`, `active` or `off`; `error` is refused before).
    Update(Status),
    /// The owner deleted it.
    Delete,
}

/// A transition the machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The state it was in.
    pub from: Status,
    /// The event refused.
    pub event: Event,
}

/// Where `event` moves a subscription in `from`; `Ok(None)` when it is gone.
pub fn transition(from: Status, event: Event) -> Result<Option<Status>, Refused> {
    use Status::*;
    let to = match (from, event) {
        (_, Event::Delete) => return Ok(None),
        (_, Event::Update(Off)) => Off,
        (_, Event::Update(Requested | Active)) => Requested,
        (Requested, Event::HandshakeOk) => Active,
        (Requested, Event::HandshakeFailed) => Error,
        (Active, Event::Delivered) => Active,
        (Active, Event::DeliveryFailed) => Error,
        _ => return Err(Refused { from, event }),
    };
    Ok(Some(to))
}

/// The status a new subscription starts in when its creator asks for
/// `asked`: `off` stays off, anything else is `requested` until the
/// handshake (the creator cannot skip it by asking for `active`).
pub fn initial(asked: Status) -> Status {
    match asked {
        Status::Off => Status::Off,
        _ => Status::Requested,
    }
}

/// Whether event notifications go to a subscription in `s`.
pub fn delivers(s: Status) -> bool {
    transition(s, Event::Delivered).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    const ALL: [Status; 4] = [Requested, Active, Error, Off];

    #[test]
    fn creation_starts_requested_or_off() {
        assert_eq!(initial(Requested), Requested);
        assert_eq!(initial(Active), Requested);
        assert_eq!(initial(Off), Off);
    }

    #[test]
    fn handshake_ok_activates_a_requested_subscription() {
        assert_eq!(transition(Requested, Event::HandshakeOk), Ok(Some(Active)));
    }

    #[test]
    fn handshake_failure_is_an_error() {
        assert_eq!(
            transition(Requested, Event::HandshakeFailed),
            Ok(Some(Error))
        );
    }

    #[test]
    fn handshakes_only_concern_requested_subscriptions() {
        for s in [Active, Error, Off] {
            for e in [Event::HandshakeOk, Event::HandshakeFailed] {
                assert_eq!(
                    transition(s, e),
                    Err(Refused { from: s, event: e }),
                    "{s:?} {e:?}"
                );
            }
        }
    }

    #[test]
    fn failed_deliveries_put_an_active_subscription_in_error() {
        assert_eq!(transition(Active, Event::Delivered), Ok(Some(Active)));
        assert_eq!(transition(Active, Event::DeliveryFailed), Ok(Some(Error)));
    }

    #[test]
    fn only_active_subscriptions_get_events() {
        assert!(delivers(Active));
        for s in [Requested, Error, Off] {
            assert!(!delivers(s), "{s:?}");
            assert!(transition(s, Event::DeliveryFailed).is_err(), "{s:?}");
        }
    }

    #[test]
    fn an_update_asking_for_activity_goes_through_a_new_handshake() {
        for s in ALL {
            for asked in [Requested, Active] {
                assert_eq!(
                    transition(s, Event::Update(asked)),
                    Ok(Some(Requested)),
                    "{s:?}"
                );
            }
        }
        // error → requested → (handshake) active
        let next = transition(Error, Event::Update(Active)).unwrap().unwrap();
        assert_eq!(transition(next, Event::HandshakeOk), Ok(Some(Active)));
    }

    #[test]
    fn an_update_to_off_turns_it_off_from_anywhere() {
        for s in ALL {
            assert_eq!(transition(s, Event::Update(Off)), Ok(Some(Off)), "{s:?}");
        }
    }

    #[test]
    fn delete_ends_every_state() {
        for s in ALL {
            assert_eq!(transition(s, Event::Delete), Ok(None), "{s:?}");
        }
    }

    #[test]
    fn the_server_alone_sets_error() {
        for s in ALL {
            assert!(transition(s, Event::Update(Error)).is_err(), "{s:?}");
        }
    }

    #[test]
    fn codes_round_trip() {
        for s in ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("entered-in-error"), None);
    }
}
