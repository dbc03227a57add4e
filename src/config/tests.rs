use super::*;

#[test]
fn an_http_issuer_is_accepted_only_on_loopback() {
    assert!(Issuer::parse("http://127.0.0.1:8080").is_ok());
    assert!(Issuer::parse("http://localhost:8080").is_ok());
    assert!(Issuer::parse("http://[::1]:8080").is_ok());
    assert!(Issuer::parse("https://id.onyx.example").is_ok());
    assert!(Issuer::parse("http://id.onyx.example").is_err());
    assert!(Issuer::parse("https://id.onyx.example/?a=b").is_err());
    assert!(Issuer::parse("not a url").is_err());
}

#[test]
fn the_issuer_is_kept_byte_for_byte() {
    let i = Issuer::parse("https://id.onyx.example/").unwrap();
    assert_eq!(i.as_str(), "https://id.onyx.example/");
    assert_eq!(i.endpoint("/token"), "https://id.onyx.example/token");
}

#[test]
fn database_urls_select_a_backend() {
    assert_eq!(
        DatabaseUrl::parse("sqlite://onyx-id.db").unwrap().backend(),
        Backend::Sqlite
    );
    assert_eq!(
        DatabaseUrl::parse("sqlite:///tmp/x.db")
            .unwrap()
            .sqlite_path()
            .unwrap(),
        PathBuf::from("/tmp/x.db")
    );
    assert_eq!(
        DatabaseUrl::parse("postgres://u@127.0.0.1/test")
            .unwrap()
            .backend(),
        Backend::Postgres
    );
    assert!(DatabaseUrl::parse("mysql://x").is_err());
    assert!(DatabaseUrl::parse("sqlite::memory:").is_err());
}

#[test]
fn trusted_proxies_are_cidrs_or_single_addresses() {
    let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let p = TrustedProxies::parse(&list(&["10.0.0.0/8", " 192.0.2.1 ", "", "fd00::/8"])).unwrap();
    assert!(p.contains("10.1.2.3".parse().unwrap()));
    assert!(p.contains("192.0.2.1".parse().unwrap()));
    assert!(!p.contains("192.0.2.2".parse().unwrap()));
    assert!(p.contains("fd12::1".parse().unwrap()));
    assert!(p.contains("::ffff:10.9.9.9".parse().unwrap()));
    assert!(TrustedProxies::parse(&[]).unwrap().is_empty());
    let err = TrustedProxies::parse(&list(&["10.0.0.0/33"])).unwrap_err();
    assert!(err.contains("10.0.0.0/33"), "{err}");
    assert!(TrustedProxies::parse(&list(&["proxy.example"])).is_err());
}

#[test]
fn the_key_encryption_key_is_checked_and_never_printed() {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerArgs,
    }
    use clap::Parser;
    let good = "B".repeat(42) + "A";
    let cli = Cli::try_parse_from(["onyx-id", "--key-encryption-key", &good]).unwrap();
    assert!(!format!("{:?}", cli.server).contains(&good));
    let settings = cli.server.settings().unwrap();
    assert!(settings.key_encryption_key.is_some());
    assert!(!format!("{settings:?}").contains(&good));
    let cli = Cli::try_parse_from(["onyx-id", "--key-encryption-key", "short"]).unwrap();
    let err = cli.server.settings().unwrap_err();
    assert!(err.starts_with("ONYX_KEY_ENCRYPTION_KEY "), "{err}");
    assert_eq!(err.lines().count(), 1);
    let cli = Cli::try_parse_from(["onyx-id"]).unwrap();
    assert!(cli.server.settings().unwrap().key_encryption_key.is_none());
}
