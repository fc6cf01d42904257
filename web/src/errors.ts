// What an error from either service means to the person at the page: field violations
// (google.rpc.BadRequest) to show beside their inputs, and one sentence for everything else.
// Never a raw exception: anything that is not a ConnectError becomes a generic sentence.

import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb";

/** An error as the page shows it. */
export interface Problem {
  /** gRPC code, or Unknown for anything that was not an answer. */
  code: Code;
  /** ErrorInfo reason (UPPER_SNAKE_CASE), when the service sent one. */
  reason: string;
  /** Field violations: field path (as the service names it) to description. */
  fields: Map<string, string>;
  /** A sentence for the alert region. */
  message: string;
}

/** Turns whatever a call threw into a Problem. `service` names the peer in messages. */
export function problem(error: unknown, service: string): Problem {
  if (!(error instanceof ConnectError)) {
    return {
      code: Code.Unknown,
      reason: "",
      fields: new Map(),
      message: "Something went wrong in this page. Reload it and try again.",
    };
  }
  const fields = new Map<string, string>();
  for (const badRequest of error.findDetails(BadRequestSchema)) {
    for (const violation of badRequest.fieldViolations) {
      const known = fields.get(violation.field);
      fields.set(violation.field, known ? `${known}; ${violation.description}` : violation.description);
    }
  }
  const reason = error.findDetails(ErrorInfoSchema)[0]?.reason ?? "";
  return { code: error.code, reason, fields, message: sentence(error, service) };
}

function sentence(error: ConnectError, service: string): string {
  const said = error.rawMessage.trim();
  switch (error.code) {
    case Code.Unavailable:
    case Code.Unknown:
    case Code.Internal:
      // A fetch that never reached the service (down, or this page's origin not allowed by
      // its --cors-origins) ends here too, with the browser's own wording.
      return `${service} cannot be reached right now. Try again in a moment.`;
    case Code.DeadlineExceeded:
    case Code.Canceled:
      return `${service} did not answer in time. Try again.`;
    case Code.ResourceExhausted:
      return said ? asSentence(said) : "Too many attempts. Wait a little and try again.";
    default:
      return said ? asSentence(said) : `${service} refused the request.`;
  }
}

/** The services' messages are lower-case phrases; the page shows sentences. */
function asSentence(text: string): string {
  const first = capitalise(text);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

/** `text` with its first letter upper-case (field violations beside their inputs, too). */
export function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
