import { Type } from "@sinclair/typebox";

// Response schemas the route files share: the documented error shape of every non-2xx answer.

export const ErrorSchema = Type.Object(
  { error: Type.String(), code: Type.String() },
  { description: "Every error: a human message and a stable machine code", additionalProperties: true },
);

/** An error response in the OpenAPI document, with what it means on that route. */
export const err = (description: string) => ({ ...ErrorSchema, description });

export const API = "/api/v1/products";
