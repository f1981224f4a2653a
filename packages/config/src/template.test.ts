import { describe, expect, it } from 'vitest';
import { substituteEnv } from './env-substitution.js';
import { parseTemplate } from './template.js';

describe('templates', () => {
  it('parses row, old and new references and literal braces', () => {
    const parsed = parseTemplate('user:{id}:{old.email}->{new.email}{{x}}');
    expect(parsed.fields).toEqual([
      { side: 'row', column: 'id' },
      { side: 'old', column: 'email' },
      { side: 'new', column: 'email' },
    ]);
    expect(parsed.parts.at(-1)).toEqual({ kind: 'text', text: '{x}' });
  });

  it.each([
    ['user:{id', "unclosed '{'"],
    ['user:}', "unmatched '}'"],
    ['user:{bad.id}', "unknown prefix 'bad.'"],
    ['user:{}', 'is not a column reference'],
    ['user:{a b}', 'is not a column reference'],
  ])('rejects %s', (template, message) => {
    expect(() => parseTemplate(template)).toThrow(message);
  });
});

describe('environment substitution', () => {
  it('replaces variables, uses defaults for unset or empty ones, keeps $${ literal', () => {
    expect(substituteEnv('a${X}b${Y:-dflt}c$${Z}', { X: '1', Y: '' })).toEqual({
      value: 'a1bdfltc${Z}',
      missing: [],
      unreadable: [],
    });
    expect(substituteEnv('${NOPE}', {}).missing).toEqual([{ name: 'NOPE' }]);
  });
});
