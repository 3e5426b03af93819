// Prints "N passed, N failed[, N skipped]" from bun test's JUnit report (bun prints no such line itself).
export {};
// Extra results from outside bun test: --passed NAME / --failed NAME; more bun test reports: --report FILE.
const [file, ...rest] = process.argv.slice(2);
if (!file) throw new Error("usage: junit-summary.ts <report.xml> [--passed NAME | --failed NAME | --report FILE]...");
let passed = 0;
let failed = 0;
let skipped = 0;
// Failed tests are named again at the end: a CI log often keeps only its last lines.
const failures: string[] = [];
async function count(path: string) {
  const xml = await Bun.file(path)
    .text()
    .catch(() => "");
  if (!xml) {
    console.log(`no test report was written at ${path}`);
    failed++;
    failures.push(`no report at ${path} (a test file or bun test itself ended early)`);
    return;
  }
  for (const m of xml.matchAll(/<testcase\b[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const inner = m[2] ?? "";
    if (/<(failure|error)\b/.test(inner)) {
      failed++;
      failures.push(`${attr(m[0], "file")}: ${attr(m[0], "name")}`);
    } else if (/<skipped\b/.test(inner)) skipped++;
    else passed++;
  }
}
function attr(tag: string, name: string): string {
  const value = new RegExp(`\\b${name}="([^"]*)"`).exec(tag)?.[1] ?? "?";
  return value
    .replace(/&apos;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}
await count(file);
for (let i = 0; i < rest.length; i += 2) {
  if (rest[i] === "--passed") passed++;
  else if (rest[i] === "--failed") {
    failed++;
    failures.push(rest[i + 1]!);
  } else if (rest[i] === "--report") await count(rest[i + 1]!);
}
for (const f of failures) console.log(`failed: ${f}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
