//! Pagination of the consoles' long lists: more than [`PER_PAGE`] entries are shown a page at
//! a time, with links to the previous and next pages (`?page=N`, other query members kept).

/// Entries on one page.
pub const PER_PAGE: usize = 50;

/// Where a list is: its page, how many pages and entries, and the links around it.
#[derive(Debug, Clone)]
pub struct Pager {
    /// 1-based.
    pub page: usize,
    pub pages: usize,
    pub total: usize,
    /// The list's address with its other query members, to which `page=N` is added.
    base: String,
}

impl Pager {
    /// Whether there is more than one page (the links are shown only then).
    pub fn paged(&self) -> bool {
        self.pages > 1
    }

    fn href(&self, page: usize) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}page={page}", self.base)
    }

    pub fn prev(&self) -> Option<String> {
        (self.page > 1).then(|| self.href(self.page - 1))
    }

    pub fn next(&self) -> Option<String> {
        (self.page < self.pages).then(|| self.href(self.page + 1))
    }

    /// The first entry's position on this page (1-based; 0 for an empty list).
    pub fn first(&self) -> usize {
        if self.total == 0 {
            0
        } else {
            (self.page - 1) * PER_PAGE + 1
        }
    }

    pub fn last(&self) -> usize {
        (self.page * PER_PAGE).min(self.total)
    }
}

/// The page `page` (1-based; out of range is the nearest page) of `items`, and its pager.
/// `base` is the list's address with its other query members (already escaped).
pub fn paginate<T>(items: Vec<T>, page: Option<usize>, base: &str) -> (Vec<T>, Pager) {
    let total = items.len();
    let pages = total.div_ceil(PER_PAGE).max(1);
    let page = page.unwrap_or(1).clamp(1, pages);
    let shown = items
        .into_iter()
        .skip((page - 1) * PER_PAGE)
        .take(PER_PAGE)
        .collect();
    (
        shown,
        Pager {
            page,
            pages,
            total,
            base: base.to_string(),
        },
    )
}

/// The pager of a list of `total` entries read a page at a time from the database: the page
/// `page` asks for, clamped as [`paginate`] does. `offset()` is where its entries start.
pub fn of_total(total: usize, page: Option<usize>, base: &str) -> Pager {
    let pages = total.div_ceil(PER_PAGE).max(1);
    Pager {
        page: page.unwrap_or(1).clamp(1, pages),
        pages,
        total,
        base: base.to_string(),
    }
}

impl Pager {
    /// How many entries come before this page.
    pub fn offset(&self) -> usize {
        (self.page - 1) * PER_PAGE
    }
}

/// Reads `page` from a query string value (anything that is not a positive number is page 1).
pub fn page_param(raw: Option<&str>) -> Option<usize> {
    raw.and_then(|p| p.parse().ok()).filter(|p| *p >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifty_entries_are_one_page_and_the_fifty_first_starts_a_second() {
        let (shown, p) = paginate((1..=50).collect::<Vec<_>>(), None, "/review");
        assert_eq!((shown.len(), p.pages, p.paged()), (50, 1, false));
        let (shown, p) = paginate((1..=51).collect::<Vec<_>>(), Some(2), "/review?step=scopes");
        assert_eq!(shown, [51]);
        assert_eq!(p.prev().as_deref(), Some("/review?step=scopes&page=1"));
        assert_eq!(p.next(), None);
        assert_eq!((p.first(), p.last(), p.total), (51, 51, 51));
        let (_, p) = paginate((1..=51).collect::<Vec<_>>(), Some(9), "/review");
        assert_eq!(p.page, 2);
        assert_eq!(page_param(Some("0")), None);
    }
}
