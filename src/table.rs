//! A map kept as a short list. The glue's maps hold a few entries (at most one per call
//! member), where a linear scan is as fast as a tree, and a list costs far less wasm than each
//! `BTreeMap` instantiation.

use std::borrow::Borrow;

/// Keys are unique; entries stay in insertion order.
pub struct Table<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for Table<K, V> {
    fn default() -> Self {
        Table {
            entries: Vec::new(),
        }
    }
}

impl<K: PartialEq, V> Table<K, V> {
    fn index<Q: PartialEq + ?Sized>(&self, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
    {
        self.entries.iter().position(|(k, _)| k.borrow() == key)
    }

    pub fn get<Q: PartialEq + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.index(key).map(|i| &self.entries[i].1)
    }

    pub fn get_mut<Q: PartialEq + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.index(key).map(|i| &mut self.entries[i].1)
    }

    /// Sets `key`'s value, returning the one it replaces.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.index(&key) {
            Some(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    pub fn remove<Q: PartialEq + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let i = self.index(key)?;
        Some(self.entries.remove(i).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Empties the table, handing out its values.
    pub fn take_values(&mut self) -> Vec<V> {
        std::mem::take(&mut self.entries)
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::*;

    #[wasm_bindgen_test]
    fn keys_are_unique_and_entries_keep_their_order() {
        let mut t: Table<String, u32> = Table::default();
        assert_eq!(t.insert("b".into(), 1), None);
        assert_eq!(t.insert("a".into(), 2), None);
        assert_eq!(t.insert("b".into(), 3), Some(1));
        assert_eq!(t.get("b"), Some(&3));
        assert_eq!(t.get("c"), None);
        let order: Vec<_> = t.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(order, [("b", 3), ("a", 2)]);
        assert_eq!(t.remove("b"), Some(3));
        assert_eq!(t.remove("b"), None);
        assert_eq!(t.values().copied().collect::<Vec<_>>(), [2]);
        assert_eq!(t.take_values(), [2]);
        assert_eq!(t.get("a"), None);
        t.insert("x".into(), 9);
        t.clear();
        assert_eq!(t.values().count(), 0);
    }
}
