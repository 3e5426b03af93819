// Prints "N passed, N failed[, N skipped]" from bun test's JUnit report (bun prints no such line itself).
export {};
// Extra results from outside bun test: --passed NAME / --failed NAME.
const [file, ...rest] = process.argv.slice(2);
if (!file) throw new Error("usage: junit-summary.ts <report.xml> [--passed NAME | --failed NAME]...");
const xml = await Bun.file(file)
  .text()
  .catch(() => "");
if (!xml) {
  console.log("0 passed, 1 failed (no test report was written)");
  process.exit(1);
}
let passed = 0;
let failed = 0;
let skipped = 0;
for (const m of xml.matchAll(/<testcase\b[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)) {
  const inner = m[2] ?? "";
  if (/<(failure|error)\b/.test(inner)) failed++;
  else if (/<skipped\b/.test(inner)) skipped++;
  else passed++;
}
for (let i = 0; i < rest.length; i += 2) {
  if (rest[i] === "--passed") passed++;
  else if (rest[i] === "--failed") failed++;
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
