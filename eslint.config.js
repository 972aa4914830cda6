// Lint that catches bugs: typescript-eslint's type-checked recommended rules over src/ (floating and
// misused promises, unsafe any, unbound methods, ...). Formatting is Biome's (`npm run lint` checks
// it); the layer rule is scripts/check-layers.mjs.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'test-artifacts/**', 'src/server/ui/**'] },
  {
    files: ['src/**/*.ts'],
    extends: [...tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['test/**/*.ts'],
    extends: [...tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname } },
  },
  {
    // Fastify sends what an async handler returns: its handlers and hooks are async whether they await or not.
    files: ['src/server/**/*.ts'],
    rules: { '@typescript-eslint/require-await': 'off' },
  },
);
