// lint-as: src-renderer/src/good.tsx
// expect: ok
import { useState } from 'react';
import { create } from 'zustand';
import { GenerateRequest } from '@atelier/common';
export const x = [useState, create, GenerateRequest];
