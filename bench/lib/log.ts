// The run's log: printed, and kept for the results' .md file.
export const lines: string[] = [];

export function log(s: string) {
  console.log(s);
  lines.push(s);
}
