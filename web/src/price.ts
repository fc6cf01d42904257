// Prices: book-service stores whole cents (int64, so bigint here); people read and type
// decimal amounts such as 12.99.

/** 1299n → "12.99"; negative amounts keep their sign. */
export function formatPrice(cents: bigint): string {
  const sign = cents < 0n ? "-" : "";
  const abs = cents < 0n ? -cents : cents;
  return `${sign}${abs / 100n}.${(abs % 100n).toString().padStart(2, "0")}`;
}

/** "12.99", "12.9", "12" or "-1" → cents; undefined for anything else. A negative amount is
 *  passed on, so book-service answers it as it would any client (a field violation). */
export function parsePrice(text: string): bigint | undefined {
  const match = /^\s*(-?)(\d{1,15})(?:[.,](\d{1,2}))?\s*$/.exec(text);
  if (match === null) return undefined;
  const [, sign, whole, fraction = ""] = match;
  const cents = BigInt(whole!) * 100n + BigInt(fraction.padEnd(2, "0") || "0");
  return sign === "-" ? -cents : cents;
}
