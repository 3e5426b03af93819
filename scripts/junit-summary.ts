// Prints "N passed, N failed[, N skipped]" from bun test's JUnit report (bun prints no such line itself).
export {};
// Extra results from outside bun test: --passed NAME / --failed NAME; more bun test reports: --report FILE.
const [file, ...rest] = process.argv.slice(2);
if (!file) throw new Error("usage: junit-summary.ts <report.xml> [--passed NAME | --failed NAME | --report FILE]...");
let passed = 0;
let failed = 0;
let skipped = 0;
async function count(path: string) {
  const xml = await Bun.file(path)
    .text()
    .catch(() => "");
  if (!xml) {
    console.log(`no test report was written at ${path}`);
    failed++;
    return;
  }
  for (const m of xml.matchAll(/<testcase\b[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const inner = m[2] ?? "";
    if (/<(failure|error)\b/.test(inner)) failed++;
    else if (/<skipped\b/.test(inner)) skipped++;
    else passed++;
  }
}
await count(file);
for (let i = 0; i < rest.length; i += 2) {
  if (rest[i] === "--passed") passed++;
  else if (rest[i] === "--failed") failed++;
  else if (rest[i] === "--report") await count(rest[i + 1]!);
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
