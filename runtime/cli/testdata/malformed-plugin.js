// Test plugin with a factory that lacks create() and has a bad type name.
export const factory = {
  kind: 'exporter',
  type: 'Bad-Type',
  description: 'broken',
  configSchema: { safeParse: () => ({ success: true, data: {} }) },
  createDefaultConfig: () => ({}),
};
