/**
 * Message text for the benchmarks: English-like words from a fixed seed, so payloads are the same
 * in every run and compress about as well as real chat text (a repeated phrase would flatter
 * every saver whose rows Postgres compresses).
 */
const WORDS = (
  "the of and to in is you that it he was for on are as with his they at be this have from or one had by word " +
  "but not what all were we when your can said there use an each which she do how their if will up other about out " +
  "many then them these so some her would make like him into time has look two more write go see number no way could " +
  "people my than first water been call who oil its now find long down day did get come made may part weather city " +
  "forecast temperature rain sunny tomorrow schedule meeting invoice customer order refund shipping account password"
).split(" ");

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** About `bytes` characters of deterministic text for message `i` of a role. */
export function messageText(i: number, role: string, bytes = 300): string {
  const rand = mulberry32(i * 7919 + role.length * 104729 + role.charCodeAt(0));
  let out = `${role} ${i}:`;
  while (out.length < bytes) out += ` ${WORDS[Math.floor(rand() * WORDS.length)]}`;
  return out.slice(0, bytes);
}
