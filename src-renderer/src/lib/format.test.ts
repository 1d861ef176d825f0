import { AppError, validationError, GenerateRequest } from '@atelier/common';
import { describe, expect, it } from 'vitest';
import { fieldErrorsOf, userMessageOf } from './field-errors.ts';
import { formatBytes, modelLabel, percent, progressLabel, usageView, vocabularyLine } from './format.ts';

describe('usage meter', () => {
  it('says how many are used and left, and when the period resets', () => {
    const v = usageView(
      { used: 63, limit: 100, periodStart: '2026-11-01T00:00:00.000Z', periodEnd: '2026-12-01T00:00:00.000Z' },
      'en-US',
    )!;
    expect(v).toMatchObject({ used: 63, limit: 100, left: 37, exhausted: false, label: '63 of 100 cloud images used' });
    expect(v.periodEndLabel).toBe('December 1, 2026');
    expect(usageView({ used: 120, limit: 100, periodStart: 'x', periodEnd: 'y' })).toMatchObject({
      left: 0,
      fraction: 1,
      exhausted: true,
    });
    expect(usageView(null)).toBeNull();
  });
  it('formats bytes and percentages', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(300 * 1024 * 1024)).toBe('300 MB');
    expect(percent(3, 4)).toBe(75);
    expect(percent(1, 0)).toBe(0);
  });
});

describe('errors for people', () => {
  it('maps VALIDATION_FAILED details to the first message per field', () => {
    const r = GenerateRequest.safeParse({ prompt: '', width: 513 });
    const e = AppError.fromJSON(JSON.parse(JSON.stringify(validationError(r.error!))));
    expect(fieldErrorsOf(e)).toEqual({ prompt: 'prompt must not be empty', width: 'width must be a multiple of 8' });
    expect(fieldErrorsOf(new AppError('QUOTA_EXCEEDED'))).toBeNull();
  });
  it('shows an AppError’s userMessage and never a raw exception', () => {
    expect(userMessageOf(new AppError('QUOTA_EXCEEDED'))).toMatch(/used all your cloud images/);
    expect(userMessageOf(new TypeError('x is undefined'))).toBe('Something went wrong. Try again.');
  });
});

describe('progress in words', () => {
  it('a batch says which image it is on, with the step within that image', () => {
    expect(progressLabel(22, 100, 2)).toBe('Image 1 of 2 · step 22 of 50');
    expect(progressLabel(50, 100, 2)).toBe('Image 1 of 2 · step 50 of 50');
    expect(progressLabel(51, 100, 2)).toBe('Image 2 of 2 · step 1 of 50');
    expect(progressLabel(0, 100, 2)).toBe('Image 1 of 2 · step 0 of 50');
    expect(progressLabel(100, 100, 2)).toBe('Image 2 of 2 · step 50 of 50');
  });
  it('a single image counts steps only; unknown totals say it is starting', () => {
    expect(progressLabel(3, 25, 1)).toBe('Step 3 of 25');
    expect(progressLabel(0, 0, 4)).toBe('Starting…');
    // A large image decoded in tiles says so instead of sitting at the last step.
    expect(progressLabel(25, 25, 1, { tile: 3, tiles: 25 })).toBe('Step 25 of 25 · decoding tile 3 of 25');
    expect(progressLabel(100, 100, 2, { tile: 1, tiles: 9 })).toBe(
      'Image 2 of 2 · step 50 of 50 · decoding tile 1 of 9',
    );
  });
});

describe('model labels', () => {
  it('fixture models say they draw noise wherever they are listed', () => {
    expect(modelLabel({ name: 'atelier-fixture-turbo', fixture: true })).toBe(
      'atelier-fixture-turbo (test fixture, draws noise)',
    );
    expect(modelLabel({ name: 'SD Turbo' })).toBe('SD Turbo');
  });
});

describe('a small model says what it knows', () => {
  it('lists its caption words by kind, and nothing for an open-vocabulary model', () => {
    expect(vocabularyLine({ shapes: ['circle', 'square'], colours: ['red'], sizes: [] })).toBe(
      'shapes: circle, square; colours: red',
    );
    expect(vocabularyLine(null)).toBe('');
    expect(vocabularyLine(undefined)).toBe('');
  });
});
