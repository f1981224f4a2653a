import { z } from 'zod';

/** Durations and sizes are plain numbers with the unit in the key name (…Ms, …Bytes): no parsing surprises. */
export const milliseconds = z.number().int().nonnegative();
export const positiveInt = z.number().int().positive();

export const PostgresIdentifier = z
  .string()
  .regex(
    /^[a-z_][a-z0-9_]{0,62}$/,
    'must be a lower-case PostgreSQL identifier (letters, digits, _; max 63)',
  );

/** `schema.table` or `table`, lower-case identifiers. */
export const qualifiedName = z
  .string()
  .regex(
    /^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$/,
    "must be 'schema.table' or 'table' (lower-case identifiers)",
  );
