//! Demographic tables for the seed generator: given and family names,
//! street names, US cities (many states, weighted towards TX and CA because
//! consent policy later keys on the patient's state), languages, and the
//! OMB race and ethnicity categories.

/// A US city with a ZIP code and a telephone area code.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Place {
    pub(crate) city: &'static str,
    pub(crate) state: &'static str,
    pub(crate) zip: &'static str,
    pub(crate) area: &'static str,
}

const fn pl(
    city: &'static str,
    state: &'static str,
    zip: &'static str,
    area: &'static str,
) -> Place {
    Place {
        city,
        state,
        zip,
        area,
    }
}

#[rustfmt::skip]
pub(crate) const PLACES: [Place; 30] = [
    pl("Austin", "TX", "78701", "512"), pl("Houston", "TX", "77002", "713"),
    pl("Dallas", "TX", "75201", "214"), pl("San Antonio", "TX", "78205", "210"),
    pl("El Paso", "TX", "79901", "915"), pl("Los Angeles", "CA", "90012", "213"),
    pl("San Francisco", "CA", "94103", "415"), pl("San Diego", "CA", "92101", "619"),
    pl("Sacramento", "CA", "95814", "916"), pl("Fresno", "CA", "93721", "559"),
    pl("Oakland", "CA", "94612", "510"), pl("New York", "NY", "10001", "212"),
    pl("Buffalo", "NY", "14202", "716"), pl("Boston", "MA", "02108", "617"),
    pl("Chicago", "IL", "60601", "312"), pl("Miami", "FL", "33130", "305"),
    pl("Orlando", "FL", "32801", "407"), pl("Seattle", "WA", "98101", "206"),
    pl("Denver", "CO", "80202", "303"), pl("Phoenix", "AZ", "85004", "602"),
    pl("Atlanta", "GA", "30303", "404"), pl("Columbus", "OH", "43215", "614"),
    pl("Philadelphia", "PA", "19103", "215"), pl("Nashville", "TN", "37203", "615"),
    pl("Portland", "OR", "97204", "503"), pl("Minneapolis", "MN", "55401", "612"),
    pl("Charlotte", "NC", "28202", "704"), pl("Baltimore", "MD", "21202", "410"),
    pl("Salt Lake City", "UT", "84101", "801"), pl("Albuquerque", "NM", "87102", "505"),
];

/// Relative weights of [`PLACES`] (TX and CA are heavier).
#[rustfmt::skip]
pub(crate) const PLACE_WEIGHTS: [u64; 30] = [
    6, 6, 5, 4, 2, 7, 4, 4, 3, 2, 2, 5, 2, 3, 4, 3, 2, 3, 3, 3, 3, 2, 3, 2, 2, 2, 2, 2, 1, 1,
];

#[rustfmt::skip]
pub(crate) const STREETS: [&str; 20] = [
    "Oak", "Maple", "Cedar", "Pine", "Elm", "Washington", "Lake", "Hill", "Park", "Main",
    "Sunset", "Lincoln", "Jackson", "River", "Highland", "Willow", "Meadow", "Church", "Spring", "Mesa",
];

#[rustfmt::skip]
pub(crate) const STREET_KINDS: [&str; 6] = ["St", "Ave", "Rd", "Blvd", "Ln", "Dr"];

#[rustfmt::skip]
pub(crate) const FEMALE_GIVEN: [&str; 30] = [
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah", "Karen",
    "Maria", "Nancy", "Lisa", "Sofia", "Emily", "Ashley", "Michelle", "Dorothy", "Carmen", "Aisha",
    "Mei", "Priya", "Olivia", "Emma", "Ava", "Hannah", "Grace", "Lucia", "Fatima", "Ruth",
];

#[rustfmt::skip]
pub(crate) const MALE_GIVEN: [&str; 30] = [
    "James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph", "Thomas", "Charles",
    "Jose", "Daniel", "Matthew", "Anthony", "Mark", "Luis", "Steven", "Andrew", "Kevin", "Wei",
    "Raj", "Omar", "Ethan", "Noah", "Liam", "Samuel", "Carlos", "Hiro", "Tyrone", "Walter",
];

/// Family names. "Jones" and "Lee" are left out so that the demo users'
/// records are the only ones with those names.
#[rustfmt::skip]
pub(crate) const FAMILY: [&str; 48] = [
    "Smith", "Johnson", "Williams", "Brown", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Hernandez",
    "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Perez",
    "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
    "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams",
    "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Chen",
];

/// Languages (BCP 47) with display, and weights.
#[rustfmt::skip]
pub(crate) const LANGUAGES: [(&str, &str, u64); 5] = [
    ("en-US", "English (United States)", 78),
    ("es", "Spanish", 15),
    ("zh", "Chinese", 3),
    ("vi", "Vietnamese", 2),
    ("fr", "French", 2),
];

/// OMB race categories (CDC Race & Ethnicity, urn:oid:2.16.840.1.113883.6.238)
/// with weights; `ASKU` is the v3-NullFlavor code US Core allows.
#[rustfmt::skip]
pub(crate) const RACES: [(&str, &str, u64); 6] = [
    ("2106-3", "White", 72),
    ("2054-5", "Black or African American", 14),
    ("2028-9", "Asian", 7),
    ("1002-5", "American Indian or Alaska Native", 2),
    ("2076-8", "Native Hawaiian or Other Pacific Islander", 1),
    ("ASKU", "Asked but no answer", 4),
];

/// OMB ethnicity categories.
pub(crate) const HISPANIC: (&str, &str) = ("2135-2", "Hispanic or Latino");
pub(crate) const NOT_HISPANIC: (&str, &str) = ("2186-5", "Not Hispanic or Latino");
