// A small runtime checker for JSON answers: each schema knows the TypeScript type it guards, and
// reports every place where a value differs from it, with a readable path such as
// `series[0].p50_ms: expected a number, got null`.

export interface Problem {
  /** Where in the value, e.g. `ui_session.state` or `series[2].t`; '' for the value itself. */
  path: string;
  message: string;
  /** A key the schema does not describe: harmless for rendering, but the types are out of date. */
  unknownKey: boolean;
}

export interface Schema<T> {
  /** Appends the problems of `value` at `path` to `out`. */
  readonly check: (value: unknown, path: string, out: Problem[]) => void;
  /** Never set; carries T so that `Infer` can read it back. */
  readonly _type?: (t: T) => T;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

/**
 * true when A and B have the same keys and each is assignable to the other, which rules out a
 * missing, extra or renamed key (optional ones included), optional-versus-required and nullability
 * differences. Nested objects are compared by assignability, so give each its own `exactly`.
 */
export type Same<A, B> = [A] extends [B]
  ? [B] extends [A]
    ? [keyof A] extends [keyof B]
      ? [keyof B] extends [keyof A]
        ? true
        : false
      : false
    : false
  : false;

/**
 * Ties a schema to the hand-written interface it checks: `exactly<ProxyStats>()(object({...}))`
 * does not compile unless the schema describes exactly `ProxyStats` (an `Argument of type … is not
 * assignable to parameter of type 'never'` error points at the schema that drifted).
 */
export function exactly<T>() {
  return <S,>(s: Same<Infer<S>, T> extends true ? S : never): Schema<T> => s as unknown as Schema<T>;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'object') return 'an object';
  return typeof value;
}

function mismatch(out: Problem[], path: string, expected: string, value: unknown) {
  out.push({ path, message: `expected ${expected}, got ${describe(value)}`, unknownKey: false });
}

function schema<T>(expected: string, test: (v: unknown) => boolean): Schema<T> {
  return {
    check: (value, path, out) => {
      if (!test(value)) mismatch(out, path, expected, value);
    },
  };
}

export const string: Schema<string> = schema('a string', (v) => typeof v === 'string');
export const number: Schema<number> = schema('a number', (v) => typeof v === 'number' && Number.isFinite(v));
/** A whole number (Rust's integer types). */
export const integer: Schema<number> = schema('a whole number', (v) => typeof v === 'number' && Number.isInteger(v));
/** A whole number ≥ 0 (Rust's unsigned integer types). */
export const count: Schema<number> = schema(
  'a whole number ≥ 0',
  (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0,
);
export const boolean: Schema<boolean> = schema('true or false', (v) => typeof v === 'boolean');

/** One of the given strings. */
export function oneOf<const L extends readonly string[]>(...values: L): Schema<L[number]> {
  return schema(values.map((v) => JSON.stringify(v)).join(' or '), (v) => typeof v === 'string' && values.includes(v));
}

/** The value or null (Rust's `Option`, which serde sends as null). */
export function nullable<T>(inner: Schema<T>): Schema<T | null> {
  return {
    check: (value, path, out) => {
      if (value !== null) inner.check(value, path, out);
    },
  };
}

export function array<T>(item: Schema<T>): Schema<T[]> {
  return {
    check: (value, path, out) => {
      if (!Array.isArray(value)) {
        mismatch(out, path, 'an array', value);
        return;
      }
      value.forEach((v, i) => item.check(v, `${path}[${i}]`, out));
    },
  };
}

// `any` only in the constraint: Schema is invariant, so no narrower element type accepts every schema.
type Shape = Record<string, Schema<any>>;
type Simplify<T> = { [K in keyof T]: T[K] };
type ObjectOf<R extends Shape, O extends Shape> = Simplify<
  { [K in keyof R]: Infer<R[K]> } & { [K in keyof O]?: Infer<O[K]> }
>;

/**
 * An object with the `required` keys and, when present, the `optional` ones. Keys the schema
 * does not name are reported as `unknownKey` problems.
 */
export function object<R extends Shape, O extends Shape = Record<never, never>>(
  required: R,
  optional?: O,
): Schema<ObjectOf<R, O>> {
  return {
    check: (value, path, out) => {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        mismatch(out, path, 'an object', value);
        return;
      }
      const record = value as Record<string, unknown>;
      const at = (key: string) => (path ? `${path}.${key}` : key);
      for (const [key, s] of Object.entries(required)) {
        if (!(key in record)) out.push({ path: at(key), message: 'missing', unknownKey: false });
        else (s as Schema<unknown>).check(record[key], at(key), out);
      }
      for (const [key, s] of Object.entries(optional ?? {})) {
        if (key in record) (s as Schema<unknown>).check(record[key], at(key), out);
      }
      for (const key of Object.keys(record)) {
        if (!(key in required) && !(optional && key in optional)) {
          out.push({ path: at(key), message: 'not described by the dashboard’s types', unknownKey: true });
        }
      }
    },
  };
}

/** Every difference between `value` and the schema, unknown keys included. */
export function problemsOf<T>(s: Schema<T>, value: unknown): Problem[] {
  const out: Problem[] = [];
  s.check(value, '', out);
  return out;
}

export function formatProblem(p: Problem): string {
  return p.path ? `${p.path}: ${p.message}` : p.message;
}
