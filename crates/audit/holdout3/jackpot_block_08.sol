// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;

contract BlockJackpot {
    receive() external payable {}

    function tryLuck() external payable {
        require(msg.value == 0.05 ether, "stake");
        bytes32 h = blockhash(block.number - 1);
        if (uint256(h) % 50 == 0) { // expect: bad-randomness
            payable(msg.sender).transfer(address(this).balance);
        }
    }
}
