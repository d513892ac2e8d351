//! Collecting fallible conversions without regrowing the result.

/// Collects `items` into a vector sized to their count, stopping at the
/// first error.
///
/// `collect::<Result<Vec<_>, _>>()` cannot know the count (its adapter
/// starts from a size hint of zero), so it grows the vector by doubling
/// and copies what it holds each time: about twice per element for a
/// claim's decoded jobs (~500 bytes each) or a bulk chunk's insert
/// parameters (perf, docs/benchmarks.md round 15).
pub fn try_collect_exact<T, E>(
    items: impl ExactSizeIterator<Item = std::result::Result<T, E>>,
) -> std::result::Result<Vec<T>, E> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(item?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::try_collect_exact;

    #[test]
    fn collects_all_or_returns_the_first_error() {
        let ok: Result<Vec<i32>, &str> = try_collect_exact([Ok(1), Ok(2)].into_iter());
        assert_eq!(ok, Ok(vec![1, 2]));
        let err: Result<Vec<i32>, &str> =
            try_collect_exact([Ok(1), Err("a"), Err("b")].into_iter());
        assert_eq!(err, Err("a"));
    }

    #[test]
    fn sizes_the_vector_to_the_count() {
        let v: Result<Vec<u8>, ()> = try_collect_exact((0..100).map(Ok));
        assert_eq!(v.map(|v| v.capacity()), Ok(100));
    }
}
