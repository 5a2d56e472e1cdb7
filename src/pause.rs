//! "Pause notifications": the choices the tray and the settings window offer,
//! and when each one ends.

use jiff::{Timestamp, ZonedDateTime as Zoned};

/// Hour of the morning at which "until tomorrow" ends, local time.
pub const TOMORROW_HOUR: i8 = 8;

/// A pause the user can pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseChoice {
    /// For one hour from now.
    Hour,
    /// Until tomorrow morning, local time.
    Tomorrow,
    /// Resume notifications now.
    Resume,
}

impl PauseChoice {
    /// When the pause ends, from `now` in the user's time zone; `None` for
    /// [`PauseChoice::Resume`].
    pub fn until(self, now: &Zoned) -> Option<Timestamp> {
        match self {
            PauseChoice::Hour => Some(now.timestamp() + jiff::SignedDuration::from_hours(1)),
            PauseChoice::Tomorrow => {
                let tomorrow = now.date().tomorrow().ok()?;
                let morning = tomorrow.at(TOMORROW_HOUR, 0, 0, 0).to_zoned_datetime(now.time_zone().clone()).ok()?;
                Some(morning.timestamp())
            }
            PauseChoice::Resume => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Zoned {
        s.parse().expect("valid zoned time")
    }

    #[test]
    fn an_hour_is_an_hour() {
        let now = at("2026-11-24T23:30:00+01:00[Europe/Paris]");
        assert_eq!(PauseChoice::Hour.until(&now), Some("2026-11-24T23:30:00Z".parse().expect("ts")));
    }

    #[test]
    fn tomorrow_means_tomorrow_morning_local_time() {
        let now = at("2026-11-24T23:30:00+01:00[Europe/Paris]");
        assert_eq!(PauseChoice::Tomorrow.until(&now), Some("2026-11-25T07:00:00Z".parse().expect("ts")));
    }

    #[test]
    fn tomorrow_across_a_dst_change_keeps_eight_local() {
        let now = at("2026-10-24T22:00:00+02:00[Europe/Paris]");
        assert_eq!(PauseChoice::Tomorrow.until(&now), Some("2026-10-25T07:00:00Z".parse().expect("ts")));
    }

    #[test]
    fn resume_ends_the_pause() {
        assert_eq!(PauseChoice::Resume.until(&Zoned::now()), None);
    }
}
