//! How a receiver's bandwidth for video is shared among the videos forwarded to it.
//!
//! Each forwarded video wants some bitrate: that of the layer its rendered size calls for, which
//! for a small tile is far below the sender's top layer. Splitting evenly would leave what a small
//! tile does not use idle while a large one is held below what it needs, so the share is max-min
//! fair (water-filling): every video that wants less than an even share of what is left gets
//! what it wants, and the rest share the remainder evenly.

/// Each video's share of `total` (bits per second), given what each wants, in the same order.
/// When everything wanted fits, the surplus is spread over all of them too: a layer's measured
/// bitrate moves a little from second to second, and a video that got exactly its last
/// measurement would drop a layer on the next small rise.
pub(crate) fn share(total: u64, wanted: &[u64]) -> Vec<u64> {
    let mut budgets = vec![0; wanted.len()];
    let mut order: Vec<usize> = (0..wanted.len()).collect();
    order.sort_by_key(|&i| wanted[i]);
    let mut left = total;
    for (n, &i) in order.iter().enumerate() {
        let sharing = u64::try_from(wanted.len() - n).unwrap_or(u64::MAX);
        let even = left / sharing;
        if wanted[i] > even {
            // This one and every one after it (they want at least as much) share the rest.
            for &j in &order[n..] {
                budgets[j] = even;
            }
            return budgets;
        }
        budgets[i] = wanted[i];
        left -= wanted[i];
    }
    let surplus = left / u64::try_from(wanted.len().max(1)).unwrap_or(u64::MAX);
    for budget in &mut budgets {
        *budget = budget.saturating_add(surplus);
    }
    budgets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_small_video_does_not_use_goes_to_the_others() {
        // Two small tiles at 100 kbit/s, one large at 1.5 Mbit/s, 1.2 Mbit/s in all: an even
        // split would hold the large one to 400 kbit/s.
        assert_eq!(
            share(1_200_000, &[100_000, 1_500_000, 100_000]),
            [100_000, 1_000_000, 100_000]
        );
    }

    #[test]
    fn those_wanting_more_than_an_even_share_split_the_rest_evenly() {
        assert_eq!(
            share(1_000_000, &[900_000, 100_000, 2_000_000]),
            [450_000, 100_000, 450_000]
        );
        assert_eq!(share(900, &[1_000, 1_000, 1_000]), [300, 300, 300]);
    }

    #[test]
    fn when_everything_fits_the_surplus_is_spread_over_all() {
        assert_eq!(
            share(1_000_000, &[100_000, 300_000]),
            [400_000, 600_000],
            "600 kbit/s left over, 300 each"
        );
        let unlimited = share(u64::MAX, &[100, 200]);
        assert!(unlimited.iter().all(|b| *b > u64::MAX / 4), "{unlimited:?}");
        assert_eq!(share(1_000, &[]), Vec::<u64>::new());
    }
}
