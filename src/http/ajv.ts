import { Ajv2020, type Options } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS with a default export; under nodenext the callable sits on .default.
type AddFormats = (ajv: Ajv2020) => Ajv2020;
/** ajv-formats' plugin: adds the `format`s the spec uses (date-time, uuid, uri-reference, ...) to an Ajv. */
export const addFormats = ((addFormatsModule as unknown as { default?: AddFormats }).default ?? addFormatsModule) as unknown as AddFormats;

/**
 * The Ajv that checks requests against openapi/order-up.yaml (OpenAPI 3.1, so JSON Schema 2020-12)
 * with the spec's formats, on top of `options` (openapi-backend's, which switch on type coercion
 * for query and path parameters): every error is listed, unknown keywords are no error.
 */
export function specAjv(options: Options = {}): Ajv2020 {
  const ajv = new Ajv2020({ ...options, strict: false, allErrors: true });
  addFormats(ajv);
  return ajv;
}
