// Test plugin whose import fails.
throw new Error('plugin init failed: license key missing');
