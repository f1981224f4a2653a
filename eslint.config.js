// Lint: typescript-eslint's recommended type-aware rules, plus the ones that catch our usual bugs
// (floating promises lose errors and acks; `any` hides unvalidated input).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      'coverage/**',
      '**/*.d.ts',
      'eslint.config.js',
      'deploy/**/*.js',
      // Application code to copy: it imports the published packages, which are not resolvable from
      // examples/ inside this workspace (type-checked against the packed tarballs by
      // test/e2e/npm-install.int.test.ts).
      'examples/**/*.ts',
      // The copy of examples/ that the walpurge package's prepack makes (gitignored; postpack removes it).
      'packages/cli/examples/**',
    ],
  },
  js.configs.recommended,
  {
    // Plain Node scripts (test/bin, deploy helpers).
    files: ['**/*.{js,mjs,cjs}'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
      },
    },
  },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
);
