// Turns a schema failure into one sentence that names the field (and the index of a batch item).

interface ValueErrorLike {
  path?: string;
  schema?: Record<string, unknown>;
  value?: unknown;
  type?: number;
  message?: string;
}

function fieldName(path: string): string {
  // "/views/3/product_id" -> "views[3].product_id"
  return path
    .split("/")
    .filter(Boolean)
    .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), "");
}

function expectation(schema: Record<string, unknown>): string {
  const range = (lo: unknown, hi: unknown, unit = "") =>
    lo !== undefined && hi !== undefined ? ` of ${lo}..${hi}${unit}` : hi !== undefined ? ` of at most ${hi}${unit}` : "";
  switch (schema.type) {
    case "string":
      if (typeof schema.pattern === "string" && schema.pattern.includes("{12}")) return "a UUID";
      return `a string${range(schema.minLength, schema.maxLength, " characters")}${schema.pattern ? " without NUL characters" : ""}`;
    case "integer":
      if (schema.maximum !== undefined && schema.minimum !== undefined) return `an integer between ${schema.minimum} and ${schema.maximum}`;
      if (schema.minimum !== undefined) return `an integer >= ${schema.minimum}`;
      return "an integer";
    case "array":
      return `an array${range(schema.minItems, schema.maxItems, " items")}`;
    case "object":
      return "a JSON object";
    default:
      return "valid";
  }
}

export function describeValidationError(error: unknown): string {
  const e = error as { all?: ValueErrorLike[]; type?: string };
  const where = e.type === "query" ? "query" : e.type === "params" ? "path" : "body";
  const first = Array.isArray(e.all) ? e.all[0] : undefined;
  if (!first) return `invalid request ${where}`;
  const path = first.path ?? "";
  const field = fieldName(path);
  // A required property that is absent reports the parent object's path in some TypeBox versions.
  if (first.value === undefined && field) return `${field} is required`;
  if (!field) return `request ${where} must be ${expectation(first.schema ?? { type: "object" })}`;
  return `${field} must be ${expectation(first.schema ?? {})}`;
}
