// A broken plugin for the chaos config corpus: its module throws while being imported.
throw new Error('chaos plugin: initialisation failed on purpose');
