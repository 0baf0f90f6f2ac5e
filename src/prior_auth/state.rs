//! The prior-authorization state machine, explicit and pure.
//!
//! A request is in one [`State`]; [`transition`] says which [`Event`]s
//! move it where and refuses every other pair. Per item, [`item_transition`]
//! does the same for a reviewer's decision. The request state after a
//! decision is derived from its items ([`State::of_items`]).
//!
//! | from \ event        | Update (new `$submit`) | Decide (all items final) | Decide (some pended) | Cancel | Extend | Appeal |
//! |---------------------|------------------------|--------------------------|----------------------|--------|--------|--------|
//! | pended              | pended (re-adjudicated)| approved/denied/partial  | pended               | cancelled | pended (later deadline) | refused |
//! | approved            | refused                | refused                  | refused              | cancelled | refused | refused |
//! | partially-approved  | refused                | refused                  | refused              | cancelled | refused | pended (the denied items) |
//! | denied              | refused                | refused                  | refused              | refused | refused | pended |
//! | cancelled           | refused                | refused                  | refused              | refused | refused | refused |
//!
//! An item moves pended → approved or denied by a decision, and denied →
//! pended by an appeal ([`item_appeal`]); nothing else moves an item.

/// The state of a whole request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// At least one item awaits a decision (or documentation).
    Pended,
    /// Every item approved (or needing no authorization).
    Approved,
    /// Every item denied.
    Denied,
    /// Some items approved, some denied, none pended.
    PartiallyApproved,
    /// Withdrawn by the provider (`Claim.status = cancelled`).
    Cancelled,
}

/// The state of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemState {
    /// Awaiting a decision.
    Pended,
    /// Certified (X12 306 A1).
    Approved,
    /// Not certified (A3).
    Denied,
    /// No authorization needed (NA).
    NotRequired,
    /// Cancelled with the request.
    Cancelled,
}

/// What can happen to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A new `$submit` with the same Claim identifier, re-adjudicated into
    /// the given item states.
    Update(State),
    /// A reviewer decided an item; the request's items now derive this state.
    Decide(State),
    /// `Claim.status = cancelled`.
    Cancel,
    /// The payer extends the decision timeframe of a pended request.
    Extend,
    /// The provider appeals a denial; the denied items are reviewed again.
    Appeal,
}

/// A transition the machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The state it was in.
    pub from: State,
    /// Why, for the client.
    pub reason: &'static str,
}

impl State {
    /// The wire name (`pa_requests.state`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pended => "pended",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::PartiallyApproved => "partially-approved",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pended,
            Self::Approved,
            Self::Denied,
            Self::PartiallyApproved,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    /// Whether no more decisions are expected.
    pub fn is_final(self) -> bool {
        self != Self::Pended
    }

    /// The request state its items imply.
    pub fn of_items(items: impl IntoIterator<Item = ItemState>) -> Self {
        let (mut pended, mut yes, mut no, mut cancelled, mut any) =
            (false, false, false, true, false);
        for i in items {
            any = true;
            match i {
                ItemState::Pended => pended = true,
                ItemState::Approved | ItemState::NotRequired => yes = true,
                ItemState::Denied => no = true,
                ItemState::Cancelled => {}
            }
            if i != ItemState::Cancelled {
                cancelled = false;
            }
        }
        match (any && cancelled, pended, yes, no) {
            (true, ..) => Self::Cancelled,
            (_, true, ..) => Self::Pended,
            (_, _, true, true) => Self::PartiallyApproved,
            (_, _, false, true) => Self::Denied,
            _ => Self::Approved,
        }
    }
}

impl ItemState {
    /// The wire name (in `pa_requests.items`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pended => "pended",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::NotRequired => "not-required",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pended,
            Self::Approved,
            Self::Denied,
            Self::NotRequired,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// The state after `event`, or why not.
pub fn transition(from: State, event: Event) -> Result<State, Refused> {
    use Event::{Appeal, Cancel, Decide, Extend, Update};
    use State::*;
    let refuse = |reason| Err(Refused { from, reason });
    match (from, event) {
        (Pended, Update(to)) => Ok(to),
        (Pended, Decide(to)) => Ok(to),
        (Pended, Extend) => Ok(Pended),
        (Pended | Approved | PartiallyApproved, Cancel) => Ok(Cancelled),
        (Denied | PartiallyApproved, Appeal) => Ok(Pended),
        (Cancelled, _) => refuse("the request was cancelled"),
        (Denied, Cancel) => refuse("a denied request has nothing to cancel"),
        (_, Update(_)) => refuse("the request is already decided; submit a new request"),
        (_, Decide(_)) => refuse("the request is already decided"),
        (_, Extend) => refuse("only a pended request's timeframe can be extended"),
        (Pended, Appeal) => refuse("the request is still pended; nothing was denied yet"),
        (Approved, Appeal) => refuse("nothing in the request was denied"),
    }
}

/// An appeal of one item in state `from`.
pub fn item_appeal(from: ItemState) -> Result<ItemState, &'static str> {
    match from {
        ItemState::Denied => Ok(ItemState::Pended),
        _ => Err("only a denied item can be appealed"),
    }
}

/// A reviewer's decision on one item in state `from`.
pub fn item_transition(from: ItemState, approve: bool) -> Result<ItemState, &'static str> {
    match from {
        ItemState::Pended if approve => Ok(ItemState::Approved),
        ItemState::Pended => Ok(ItemState::Denied),
        _ => Err("the item is not pended"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::*;

    const ALL: [State; 5] = [Pended, Approved, Denied, PartiallyApproved, Cancelled];

    #[test]
    fn pended_accepts_updates_decisions_and_cancel() {
        for to in ALL {
            assert_eq!(transition(Pended, Event::Update(to)), Ok(to));
            assert_eq!(transition(Pended, Event::Decide(to)), Ok(to));
        }
        assert_eq!(transition(Pended, Event::Cancel), Ok(Cancelled));
    }

    #[test]
    fn approvals_can_only_be_cancelled() {
        for from in [Approved, PartiallyApproved] {
            assert_eq!(transition(from, Event::Cancel), Ok(Cancelled));
            for to in ALL {
                assert!(transition(from, Event::Update(to)).is_err());
                assert!(transition(from, Event::Decide(to)).is_err());
            }
        }
    }

    #[test]
    fn extensions_only_while_pended() {
        assert_eq!(transition(Pended, Event::Extend), Ok(Pended));
        for from in [Approved, Denied, PartiallyApproved, Cancelled] {
            assert!(transition(from, Event::Extend).is_err(), "{from:?}");
        }
    }

    #[test]
    fn appeals_reopen_requests_with_denials_only() {
        assert_eq!(transition(Denied, Event::Appeal), Ok(Pended));
        assert_eq!(transition(PartiallyApproved, Event::Appeal), Ok(Pended));
        for from in [Pended, Approved, Cancelled] {
            assert!(transition(from, Event::Appeal).is_err(), "{from:?}");
        }
        assert_eq!(item_appeal(ItemState::Denied), Ok(ItemState::Pended));
        for from in [
            ItemState::Pended,
            ItemState::Approved,
            ItemState::NotRequired,
            ItemState::Cancelled,
        ] {
            assert!(item_appeal(from).is_err(), "{from:?}");
        }
    }

    #[test]
    fn denied_and_cancelled_refuse_everything() {
        for from in [Denied, Cancelled] {
            assert!(transition(from, Event::Cancel).is_err());
            for to in ALL {
                let e = transition(from, Event::Update(to)).unwrap_err();
                assert_eq!(e.from, from);
                assert!(transition(from, Event::Decide(to)).is_err());
            }
        }
    }

    #[test]
    fn only_pended_items_can_be_decided() {
        assert_eq!(
            item_transition(ItemState::Pended, true),
            Ok(ItemState::Approved)
        );
        assert_eq!(
            item_transition(ItemState::Pended, false),
            Ok(ItemState::Denied)
        );
        for from in [
            ItemState::Approved,
            ItemState::Denied,
            ItemState::NotRequired,
            ItemState::Cancelled,
        ] {
            assert!(item_transition(from, true).is_err());
            assert!(item_transition(from, false).is_err());
        }
    }

    #[test]
    fn request_state_derives_from_items() {
        use ItemState as I;
        assert_eq!(State::of_items([I::Approved, I::NotRequired]), Approved);
        assert_eq!(State::of_items([I::Approved, I::Pended]), Pended);
        assert_eq!(State::of_items([I::Approved, I::Denied]), PartiallyApproved);
        assert_eq!(State::of_items([I::Denied]), Denied);
        assert_eq!(State::of_items([I::Cancelled, I::Cancelled]), Cancelled);
        for s in ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
    }
}
