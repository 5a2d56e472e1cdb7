//! "Pause notifications": the choices the tray and the settings window offer,
//! and when each one ends; and quiet hours, a pause that comes back every
//! day.
//!
//! Quiet hours are in local time and may wrap midnight (22:00–07:30). A
//! period whose start equals its end is empty, never "all day".

use jiff::civil::Time;
use jiff::{Timestamp, ZonedDateTime as Zoned};
use serde::{Deserialize, Serialize};

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

/// A daily quiet period, local time: `[notifications.quiet_hours]` with
/// `from = "22:00"` and `to = "07:30"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawQuietHours", into = "RawQuietHours")]
pub struct QuietHours {
    /// When it starts each day.
    pub from: Time,
    /// When it ends (the next day when earlier than `from`).
    pub to: Time,
}

/// Quiet hours as written: two "HH:MM" strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuietHours {
    /// "HH:MM".
    pub from: String,
    /// "HH:MM".
    pub to: String,
}

impl TryFrom<RawQuietHours> for QuietHours {
    type Error = String;

    fn try_from(raw: RawQuietHours) -> Result<Self, Self::Error> {
        let parse = |text: &str, field: &str| {
            let (h, m) = text.trim().split_once(':').ok_or_else(|| format!("`{field}` must be a time like \"22:00\""))?;
            let (h, m): (i8, i8) = match (h.parse(), m.parse()) {
                (Ok(h), Ok(m)) => (h, m),
                _ => return Err(format!("`{field}` must be a time like \"22:00\"")),
            };
            Time::new(h, m, 0, 0).map_err(|_| format!("`{field}` must be a time between 00:00 and 23:59"))
        };
        Ok(QuietHours { from: parse(&raw.from, "from")?, to: parse(&raw.to, "to")? })
    }
}

impl From<QuietHours> for RawQuietHours {
    fn from(q: QuietHours) -> Self {
        let hm = |t: Time| format!("{:02}:{:02}", t.hour(), t.minute());
        RawQuietHours { from: hm(q.from), to: hm(q.to) }
    }
}

impl QuietHours {
    /// When the quiet period `now` falls in ends, or `None` outside one.
    pub fn active_until(&self, now: &Zoned) -> Option<Timestamp> {
        if self.from == self.to {
            return None;
        }
        let time = now.time();
        let ends_on = if self.from < self.to {
            (self.from..self.to).contains(&time).then(|| now.date())
        } else if time >= self.from {
            now.date().tomorrow().ok()
        } else if time < self.to {
            Some(now.date())
        } else {
            None
        }?;
        let end = ends_on.to_datetime(self.to).to_zoned_datetime(now.time_zone().clone()).ok()?;
        Some(end.timestamp())
    }

    /// The next time quiet starts or ends after `now`, to wake up then.
    pub fn next_change(&self, now: &Zoned) -> Option<Timestamp> {
        if self.from == self.to {
            return None;
        }
        if let Some(end) = self.active_until(now) {
            return Some(end);
        }
        let today = now.date().to_datetime(self.from).to_zoned_datetime(now.time_zone().clone()).ok()?;
        if today.timestamp() > now.timestamp() {
            return Some(today.timestamp());
        }
        let tomorrow = now.date().tomorrow().ok()?.to_datetime(self.from).to_zoned_datetime(now.time_zone().clone()).ok()?;
        Some(tomorrow.timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet(from: &str, to: &str) -> QuietHours {
        QuietHours::try_from(RawQuietHours { from: from.into(), to: to.into() }).expect("valid")
    }

    #[test]
    fn quiet_hours_across_midnight_end_the_next_morning() {
        let night = quiet("22:00", "07:30");
        let late = at("2026-11-24T23:10:00+01:00[Europe/Paris]");
        assert_eq!(night.active_until(&late), Some("2026-11-25T06:30:00Z".parse().expect("ts")));
        let early = at("2026-11-25T06:00:00+01:00[Europe/Paris]");
        assert_eq!(night.active_until(&early), Some("2026-11-25T06:30:00Z".parse().expect("ts")));
        let day = at("2026-11-25T12:00:00+01:00[Europe/Paris]");
        assert_eq!(night.active_until(&day), None);
        assert_eq!(night.next_change(&day), Some("2026-11-25T21:00:00Z".parse().expect("ts")));
    }

    #[test]
    fn quiet_hours_within_a_day_and_empty_ones() {
        let lunch = quiet("12:00", "13:00");
        assert!(lunch.active_until(&at("2026-11-25T12:30:00+01:00[Europe/Paris]")).is_some());
        assert!(lunch.active_until(&at("2026-11-25T13:00:00+01:00[Europe/Paris]")).is_none());
        let none = quiet("09:00", "09:00");
        assert!(none.active_until(&at("2026-11-25T09:00:00+01:00[Europe/Paris]")).is_none());
        assert!(none.next_change(&at("2026-11-25T09:00:00+01:00[Europe/Paris]")).is_none());
    }

    #[test]
    fn quiet_hours_are_written_and_read_as_hh_mm() {
        let q = quiet(" 7:05", "23:59");
        assert_eq!(RawQuietHours::from(q), RawQuietHours { from: "07:05".into(), to: "23:59".into() });
        assert!(QuietHours::try_from(RawQuietHours { from: "25:00".into(), to: "07:00".into() }).is_err());
        assert!(QuietHours::try_from(RawQuietHours { from: "late".into(), to: "07:00".into() }).is_err());
    }

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
