//! Wire enums: the closed sets of names onyx-id stores, sends and reads (a permission's state,
//! an app's stage, a review step, an OAuth error code …). Each is declared with [`wire_enum!`],
//! so its string form is written once, as the variant's name in the enum's case, and serde,
//! `FromStr`, `Display`, `&'static str`, the list of names (clap's value lists), iteration and
//! the OpenAPI schema all derive from it.

/// Declares a wire enum: the enum with its derives and `as_str`, `parse` and `all`.
///
/// ```text
/// wire_enum! {
///     /// Where an app runs.
///     #[derive(PartialOrd, Ord)]
///     pub enum Stage as "snake_case" {
///         Draft,
///         Preview,
///         Production,
///     }
/// }
/// ```
///
/// - Derives: `Debug, Clone, Copy, PartialEq, Eq`, serde's `Serialize` and `Deserialize`,
///   strum's `EnumString, IntoStaticStr, Display, EnumIter, VariantNames`, and
///   `utoipa::ToSchema`. Attributes written on the enum (doc comments, more derives, a serde
///   `try_from`) and on its variants (doc comments, `#[default]`) are kept.
/// - `as "case"` names the case of the string forms, for serde (`rename_all`) and strum
///   (`serialize_all`) alike: `"snake_case"` or `"lowercase"`. Without it the names are the
///   variants' own (`ES256`).
/// - `parse(raw) -> Option<Self>` reads exactly the string forms and nothing else. A stored
///   value that must fall back to a default says so where it is read
///   (`AuthMethod::parse(raw).unwrap_or(AuthMethod::ClientSecret)`).
/// - Write `own parse;` first when the enum's `parse` is its own (one returning the caller's
///   error, say): the macro then leaves `parse` out.
macro_rules! wire_enum {
    (
        own parse;
        $(#[$meta:meta])*
        $vis:vis enum $name:ident $(as $case:tt)? { $($body:tt)* }
    ) => {
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            ::serde::Serialize,
            ::serde::Deserialize,
            ::strum::EnumString,
            ::strum::IntoStaticStr,
            ::strum::Display,
            ::strum::EnumIter,
            ::strum::VariantNames,
            ::utoipa::ToSchema,
        )]
        $(
            #[serde(rename_all = $case)]
            #[strum(serialize_all = $case)]
        )?
        $(#[$meta])*
        $vis enum $name { $($body)* }

        impl $name {
            /// The string form (stored, sent, and read back by `parse`).
            pub fn as_str(self) -> &'static str {
                self.into()
            }

            /// Every variant, in declaration order.
            pub fn all() -> impl Iterator<Item = Self> {
                <Self as ::strum::IntoEnumIterator>::iter()
            }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident $(as $case:tt)? { $($body:tt)* }
    ) => {
        $crate::wire::wire_enum! {
            own parse;
            $(#[$meta])*
            $vis enum $name $(as $case)? { $($body)* }
        }

        impl $name {
            /// The variant whose string form is `raw` exactly; `None` for anything else.
            pub fn parse(raw: &str) -> Option<Self> {
                raw.parse().ok()
            }
        }
    };
}

pub(crate) use wire_enum;

/// `TryFrom<String>` through the enum's derived `FromStr`, with a readable error that lists
/// the names (`unknown algorithm "HS256": expected one of ES256, RS256`), for enums read with
/// `#[serde(try_from = "String")]` from files people write (the key files, `scopes.toml`).
macro_rules! try_from_string {
    ($ty:ty, $what:literal) => {
        impl TryFrom<String> for $ty {
            type Error = String;

            fn try_from(raw: String) -> Result<Self, String> {
                use strum::VariantNames;
                raw.parse().map_err(|_| {
                    format!(
                        concat!("unknown ", $what, " {:?}: expected one of {}"),
                        raw,
                        <$ty>::VARIANTS.join(", ")
                    )
                })
            }
        }
    };
}

pub(crate) use try_from_string;

/// The read side of a newtype over a `String` that keeps a protocol value as written (a
/// redirect URI, a scope name): `as_str`, `AsRef<str>`, `Deref<Target = str>`, `Display`, and
/// equality with a `str` (the same bytes: no normalisation).
/// The type declares its own constructors, which say where a value may come from.
macro_rules! str_newtype {
    ($ty:ident) => {
        impl $ty {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $ty {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

pub(crate) use str_newtype;

#[cfg(test)]
mod tests {
    wire_enum! {
        /// A test enum.
        #[derive(Default)]
        pub enum Sample as "snake_case" {
            #[default]
            FirstOne,
            /// The second.
            Second,
        }
    }

    wire_enum! {
        #[serde(try_from = "String")]
        pub enum Verbatim {
            ES256,
        }
    }

    try_from_string!(Verbatim, "verbatim");

    /// `value` serialises to `json`, and `json` reads back as `value`.
    fn round_trip<T>(value: T, json: &str)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        assert_eq!(serde_json::to_string(&value).unwrap(), json);
        assert_eq!(serde_json::from_str::<T>(json).unwrap(), value);
    }

    #[test]
    fn every_string_form_comes_from_the_variant_name() {
        assert_eq!(Sample::FirstOne.as_str(), "first_one");
        assert_eq!(Sample::FirstOne.to_string(), "first_one");
        assert_eq!(Sample::parse("second"), Some(Sample::Second));
        assert_eq!(Sample::parse("Second"), None);
        round_trip(Sample::FirstOne, "\"first_one\"");
        round_trip(Sample::Second, "\"second\"");
        assert_eq!(
            <Sample as strum::VariantNames>::VARIANTS,
            ["first_one", "second"]
        );
        assert_eq!(
            Sample::all().collect::<Vec<_>>(),
            [Sample::FirstOne, Sample::Second]
        );
        assert_eq!(Sample::default(), Sample::FirstOne);
    }

    #[test]
    fn the_openapi_schema_lists_the_same_names() {
        let schema = serde_json::to_value(<Sample as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(schema["enum"], serde_json::json!(["first_one", "second"]));
        let schema = serde_json::to_value(<Verbatim as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(schema["enum"], serde_json::json!(["ES256"]));
    }

    #[test]
    fn without_a_case_the_names_are_the_variants_own() {
        assert_eq!(Verbatim::ES256.as_str(), "ES256");
        round_trip(Verbatim::ES256, "\"ES256\"");
        let err = serde_json::from_str::<Verbatim>("\"es256\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown verbatim \"es256\": expected one of ES256"),
            "{err}"
        );
    }
}
