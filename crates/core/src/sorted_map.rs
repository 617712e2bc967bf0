//! A map kept as a vector sorted by key: the call's peers, one per other member (a handful).
//! It behaves as the `BTreeMap` it replaces (lookups by key, iteration in key order) with a
//! binary search over a `Vec`, which costs the SDK's wasm a fraction of a B-tree's code.

use std::borrow::Borrow;
use std::fmt;

/// Keys are unique; iteration is in ascending key order.
#[derive(Clone, PartialEq)]
pub(crate) struct SortedMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        SortedMap {
            entries: Vec::new(),
        }
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for SortedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl<K: Ord, V> SortedMap<K, V> {
    pub fn new() -> Self {
        SortedMap::default()
    }

    /// Where `key` is (`Ok`), or where it would go (`Err`).
    fn search<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.search(key).is_ok()
    }

    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        let i = self.search(key).ok()?;
        Some(&self.entries[i].1)
    }

    pub fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let i = self.search(key).ok()?;
        Some(&mut self.entries[i].1)
    }

    /// Sets `key`'s value, returning the one it replaces.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.search(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let i = self.search(key).ok()?;
        Some(self.entries.remove(i).1)
    }

    /// `key`'s slot, to fill or to change in place.
    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        match self.search(&key) {
            Ok(index) => Entry::Occupied(OccupiedEntry { map: self, index }),
            Err(index) => Entry::Vacant(VacantEntry {
                map: self,
                index,
                key,
            }),
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.iter_mut().map(|(_, v)| v)
    }
}

/// A slot of [`SortedMap::entry`].
pub(crate) enum Entry<'a, K, V> {
    Vacant(VacantEntry<'a, K, V>),
    Occupied(OccupiedEntry<'a, K, V>),
}

pub(crate) struct VacantEntry<'a, K, V> {
    map: &'a mut SortedMap<K, V>,
    /// Where the key goes to keep the order.
    index: usize,
    key: K,
}

impl<'a, K, V> VacantEntry<'a, K, V> {
    pub fn key(&self) -> &K {
        &self.key
    }

    pub fn insert(self, value: V) -> &'a mut V {
        self.map.entries.insert(self.index, (self.key, value));
        &mut self.map.entries[self.index].1
    }
}

pub(crate) struct OccupiedEntry<'a, K, V> {
    map: &'a mut SortedMap<K, V>,
    index: usize,
}

impl<'a, K, V> OccupiedEntry<'a, K, V> {
    pub fn into_mut(self) -> &'a mut V {
        &mut self.map.entries[self.index].1
    }
}

impl<K, V> IntoIterator for SortedMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a, K, V> IntoIterator for &'a SortedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<'a, K, V> IntoIterator for &'a mut SortedMap<K, V> {
    type Item = (&'a K, &'a mut V);
    type IntoIter =
        std::iter::Map<std::slice::IterMut<'a, (K, V)>, fn(&'a mut (K, V)) -> (&'a K, &'a mut V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_iterate_in_order_like_a_btree_map() {
        let mut m: SortedMap<String, u32> = SortedMap::new();
        let mut b = std::collections::BTreeMap::new();
        for (k, v) in [("c", 1), ("a", 2), ("b", 3), ("a", 4), ("d", 5)] {
            assert_eq!(m.insert(k.into(), v), b.insert(k.to_owned(), v));
        }
        assert_eq!(m.remove("b"), b.remove("b"));
        assert_eq!(m.remove("b"), None);
        let ours: Vec<_> = (&m).into_iter().map(|(k, v)| (k.clone(), *v)).collect();
        let theirs: Vec<_> = b.iter().map(|(k, v)| (k.clone(), *v)).collect();
        assert_eq!(ours, theirs);
        assert_eq!(format!("{m:?}"), format!("{b:?}"));
        assert_eq!(m.len(), 3);
        assert!(m.contains_key("a") && !m.contains_key("b"));
        assert_eq!(m.get("a"), Some(&4));
        *m.get_mut("c").expect("c") += 10;
        for (_, v) in &mut m {
            *v += 1;
        }
        m.values_mut().for_each(|v| *v *= 2);
        assert_eq!(m.values().copied().collect::<Vec<_>>(), [10, 24, 12]);
        assert_eq!(m.keys().cloned().collect::<Vec<_>>(), ["a", "c", "d"]);
        assert_eq!(
            m.into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["a", "c", "d"]
        );
    }

    #[test]
    fn an_entry_fills_a_vacant_key_in_order_or_changes_the_present_value() {
        let mut m: SortedMap<String, u32> = SortedMap::new();
        m.insert("b".into(), 1);
        match m.entry("a".into()) {
            Entry::Vacant(slot) => {
                assert_eq!(slot.key(), "a");
                *slot.insert(2) += 1;
            }
            Entry::Occupied(_) => panic!("a is not there"),
        }
        match m.entry("b".into()) {
            Entry::Occupied(slot) => *slot.into_mut() = 7,
            Entry::Vacant(_) => panic!("b is there"),
        }
        assert_eq!(m.keys().cloned().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(m.values().copied().collect::<Vec<_>>(), [3, 7]);
        assert!(!m.is_empty());
    }
}
