// Prints "N passed, N failed[, N skipped]" from bun test's JUnit report (bun prints no such line itself).
export {};
const file = process.argv[2];
if (!file) throw new Error("usage: junit-summary.ts <report.xml>");
const xml = await Bun.file(file).text().catch(() => "");
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
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
