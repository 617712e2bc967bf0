// Median and p95 (nearest rank) of a list of milliseconds.
export function summary(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { count: 0, p50: null, p95: null, min: null, max: null };
  const rank = (p) => v[Math.min(v.length, Math.max(1, Math.ceil((p / 100) * v.length))) - 1];
  return { count: v.length, p50: rank(50), p95: rank(95), min: v[0], max: v[v.length - 1] };
}
