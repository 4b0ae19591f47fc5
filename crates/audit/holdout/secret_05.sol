pragma solidity ^0.5.0;

contract GuessTheSecret {
    bytes32 public answerHash;

    constructor(bytes32 hash) public payable {
        require(msg.value == 1 ether);
        answerHash = hash;
    }

    function guess(string memory answer) public payable {
        require(msg.value == 0.1 ether);
        if (keccak256(abi.encodePacked(answer)) == answerHash) { // expect: front-running
            msg.sender.transfer(address(this).balance);
        }
    }
}
