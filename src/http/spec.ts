import { Ajv2020, type Options } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { OpenAPIBackend } from 'openapi-backend';

// ajv-formats is CommonJS with a default export; under nodenext the callable sits on .default.
type AddFormats = (ajv: Ajv2020) => Ajv2020;
/** ajv-formats' plugin: adds the `format`s the spec uses (date-time, uuid, uri-reference, ...) to an Ajv. */
export const addFormats = ((addFormatsModule as unknown as { default?: AddFormats }).default ?? addFormatsModule) as unknown as AddFormats;

/**
 * openapi-backend on the spec at `definition` (openapi/order-up.yaml), not yet initialised. The
 * document is OpenAPI 3.1: `redocly lint` checks it, and Ajv2020 with the spec's formats enforces
 * its 2020-12 keywords, listing every error. openapi-backend's own Ajv options are kept (they switch
 * on type coercion for query and path parameters).
 */
export function specBackend(definition: string): OpenAPIBackend {
  return new OpenAPIBackend({
    definition,
    quick: true,
    strict: true,
    coerceTypes: true,
    customizeAjv: (_original, options: Options) => {
      const ajv = new Ajv2020({ ...options, strict: false, allErrors: true });
      addFormats(ajv);
      return ajv;
    },
  });
}
