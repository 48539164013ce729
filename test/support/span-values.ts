/**
 * Span attributes of every kind of value OTLP encodes (integers small, large
 * and negative, a double, a boolean, arrays, non-ASCII and long strings, an
 * empty one), for the tests that compare shardwrite's span encoding with the
 * maintained serializer's.
 */
export const EVERY_VALUE_KIND = {
  'big.int': 2 ** 40 + 3,
  'negative.int': -5,
  'huge.negative': -(2 ** 40),
  'a.double': 0.125,
  'a.bool': false,
  strings: ['a', 'ü', ''],
  numbers: [1, 2.5, -3],
  'non.ascii': 'Grüße — 🚀 ok',
  'long.value': 'x'.repeat(700),
  empty: '',
};
