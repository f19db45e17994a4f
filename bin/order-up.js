#!/usr/bin/env node
// The built CLI lives in dist/ (`make build`); this stub keeps package.json's bin stable.
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv);
