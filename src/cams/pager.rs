//! One walk over the `ListChatGroup` pages of a space, for every reader of the listing: the
//! controller's shared listings ([`crate::reconcile::observe`]) and [`super::client::find_group`].
//!
//! CAMS has no call that reads one group, so a group is found by paging through its space. A
//! walk asks for pages 1, 2, ... and stops at the first of:
//! - the visitor saying it has what it needs ([`WalkEnd::Stopped`]);
//! - the end of the listing ([`WalkEnd::Complete`]): an empty page, as many items as
//!   `Data.Total` (counted, so that a service returning smaller pages than asked for is still
//!   followed to the end), or, without `Total`, a short page;
//! - [`MAX_LIST_PAGES`] pages ([`WalkEnd::Truncated`], with a warning): a guard against a
//!   service that never stops paging (one that ignores `Page.Index` answers page 1 forever).
//!   Groups past the limit were not seen, so a group missing from such a listing is not known
//!   to be missing.

use std::ops::ControlFlow;

use super::{
    CamsApi, CamsError, Credentials, Endpoint, ListChatGroupRequest, ListChatGroupResponse,
};

/// Most `ListChatGroup` pages one walk reads: 50,000 groups at the controller's page size of 50.
pub const MAX_LIST_PAGES: u32 = 1000;

/// How a walk ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkEnd {
    /// The visitor stopped the walk.
    Stopped,
    /// Every page of the listing was read.
    Complete,
    /// The walk stopped at [`MAX_LIST_PAGES`] while the listing went on.
    Truncated,
}

/// What a search of a listing found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup<T> {
    /// The group was listed.
    Found(T),
    /// The whole listing was read and the group is not in it.
    Missing,
    /// The listing was cut at [`MAX_LIST_PAGES`] pages before the group turned up: whether it
    /// exists is not known.
    Truncated,
}

impl<T> Lookup<T> {
    /// The group, when it was found.
    pub fn found(self) -> Option<T> {
        match self {
            Lookup::Found(found) => Some(found),
            Lookup::Missing | Lookup::Truncated => None,
        }
    }

    /// True when the group was found.
    pub fn is_found(&self) -> bool {
        matches!(self, Lookup::Found(_))
    }
}

/// Walks the pages of `request`'s listing (its `page_index` is ignored; its `page_size`, at
/// least 1, is used), handing each page to `visit` until it breaks, the listing ends, or
/// [`MAX_LIST_PAGES`] pages were read (see the [module docs](self)). A failed page ends the
/// walk with its error.
pub async fn walk<C: CamsApi>(
    api: &C,
    endpoint: &Endpoint,
    credentials: &Credentials,
    request: &ListChatGroupRequest,
    mut visit: impl FnMut(ListChatGroupResponse) -> ControlFlow<()>,
) -> Result<WalkEnd, CamsError> {
    let page_size = request.page_size.max(1);
    let mut request = ListChatGroupRequest {
        page_size,
        ..request.clone()
    };
    let mut listed: u64 = 0;
    for page_index in 1..=MAX_LIST_PAGES {
        request.page_index = page_index;
        let page = api.list_chat_group(endpoint, credentials, &request).await?;
        let count = page.groups.len();
        let total = page.total;
        if visit(page).is_break() {
            return Ok(WalkEnd::Stopped);
        }
        listed = listed.saturating_add(u64::try_from(count).unwrap_or(u64::MAX));
        let last = match total {
            Some(total) => listed >= total || count == 0,
            None => count < usize::try_from(page_size).unwrap_or(usize::MAX),
        };
        if last {
            return Ok(WalkEnd::Complete);
        }
    }
    tracing::warn!(
        cust_space_id = %request.cust_space_id,
        business_number = %request.business_number,
        pages = MAX_LIST_PAGES,
        page_size,
        listed,
        "ListChatGroup kept returning full pages; the listing was cut at the page limit, and groups past it were not seen"
    );
    Ok(WalkEnd::Truncated)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::cams::{ChatGroupItem, SecretString};

    /// A service that ignores `Page.Index`: every page is full, and there is no `Total`.
    #[derive(Default)]
    struct EndlessPages {
        pages: AtomicU32,
    }

    impl CamsApi for EndlessPages {
        crate::cams::no_op_writes!();

        async fn list_chat_group(
            &self,
            _: &Endpoint,
            _: &Credentials,
            request: &ListChatGroupRequest,
        ) -> Result<ListChatGroupResponse, CamsError> {
            self.pages.fetch_add(1, Ordering::SeqCst);
            let groups = (0..request.page_size)
                .map(|i| ChatGroupItem {
                    group_id: Some(format!("G{i}")),
                    ..ChatGroupItem::default()
                })
                .collect();
            Ok(ListChatGroupResponse {
                groups,
                ..ListChatGroupResponse::default()
            })
        }
    }

    fn request(page_size: u32) -> ListChatGroupRequest {
        ListChatGroupRequest {
            cust_space_id: "cams-space".into(),
            business_number: "8613800001234".into(),
            channel_type: None,
            group_status: None,
            subject: None,
            page_index: 7,
            page_size,
        }
    }

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "id".into(),
            access_key_secret: SecretString::new("secret"),
            security_token: None,
        }
    }

    /// Everything written to a `Vec` shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_listing_that_never_ends_is_cut_at_the_page_limit_with_a_warning() {
        let api = EndlessPages::default();
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let mut visited = 0u32;
        let end = tracing::subscriber::with_default(subscriber, || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime")
                .block_on(walk(
                    &api,
                    &Endpoint::from_url("http://127.0.0.1:1/"),
                    &creds(),
                    &request(2),
                    |_| {
                        visited += 1;
                        ControlFlow::Continue(())
                    },
                ))
                .map_err(|err| err.to_string())
        })
        .expect("listed");
        assert_eq!(end, WalkEnd::Truncated);
        assert_eq!(api.pages.load(Ordering::SeqCst), MAX_LIST_PAGES);
        assert_eq!(visited, MAX_LIST_PAGES);
        let logged = String::from_utf8_lossy(
            &captured
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned();
        assert_eq!(logged.matches(" WARN ").count(), 1, "{logged}");
        assert!(logged.contains("cust_space_id=cams-space"), "{logged}");
        assert!(
            logged.contains(&format!("pages={MAX_LIST_PAGES}")),
            "{logged}"
        );
        assert!(!logged.contains("secret"), "{logged}");
    }

    #[tokio::test]
    async fn the_visitor_stops_the_walk_and_pages_start_at_one() {
        let api = EndlessPages::default();
        let mut indexes = Vec::new();
        let end = walk(
            &api,
            &Endpoint::from_url("http://127.0.0.1:1/"),
            &creds(),
            &request(0),
            |page| {
                indexes.push(page.groups.len());
                if indexes.len() == 3 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )
        .await
        .expect("listed");
        assert_eq!(end, WalkEnd::Stopped);
        assert_eq!(indexes, [1, 1, 1], "a page size of 0 asks for 1");
        assert_eq!(api.pages.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn only_a_found_lookup_holds_the_group() {
        assert_eq!(Lookup::Found(1).found(), Some(1));
        assert!(Lookup::Found(1).is_found());
        assert_eq!(Lookup::<u8>::Missing.found(), None);
        assert!(!Lookup::<u8>::Truncated.is_found());
    }
}
